//! WooCommerce product reviews, read from the linked store's own REST API
//! (`GET /wc/v3/products/reviews?status=approved`) with that store's credentials.

use super::{Batch, FetchRange, Provider};
use crate::config::PlatformSettings;
use crate::config::WooReviewsSettings;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;
use crate::sources::woocommerce::WooSource;

pub struct WooReviews {
    woo: WooSource,
}

impl WooReviews {
    pub fn new(s: &WooReviewsSettings, clock: &Clock) -> Result<WooReviews, SourceError> {
        match &s.store.platform {
            PlatformSettings::WooCommerce(w) => Ok(WooReviews {
                woo: WooSource::new(&s.store, w, clock)?,
            }),
            #[allow(unreachable_patterns)]
            _ => Err(SourceError::Config(format!(
                "store `{}` is not a WooCommerce store",
                s.store.name
            ))),
        }
    }
}

impl Provider for WooReviews {
    async fn fetch(&self, _range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        Ok(Batch::Reviews(self.woo.reviews(shutdown).await?))
    }

    async fn check_online(
        &self,
        _store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        let n = self.woo.reviews(shutdown).await?.len();
        Ok(vec![format!("{n} approved product reviews visible")])
    }

    fn http(&self) -> &HttpClient {
        self.woo.http()
    }
}
