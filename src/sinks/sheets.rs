//! The `google_sheets` sink, as a Google service account (JWT RS256 → access token at the
//! key's `token_uri`, shared with the GA4 source: `sources::google_auth`): writes each key
//! result's value to its cell, `PUT {api_base}/v4/spreadsheets/{id}/values/{cell}
//! ?valueInputOption=RAW`, and/or appends the check-in as a row of `log_tab`,
//! `POST …/values/'{log_tab}'!A:E:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS`
//! (time, key result, value, progress, status). Values are numbers (rates as fractions; a cell
//! formatted as percent shows them as percent). Writing a cell again is harmless; an append
//! resent after a crash between send and mark adds the row twice (its time identifies it).

use serde_json::{Value as Json, json};

use super::{SendError, Sink, SinkHttp, key_result_id, value_number};
use crate::config::GoogleSheetsSettings;
use crate::sources::google_auth::ServiceAccount;
use crate::store::OutboxRow;

/// Read and write spreadsheets.
pub const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets";

pub struct SheetsSink {
    settings: GoogleSheetsSettings,
    account: ServiceAccount,
    http: SinkHttp,
}

fn refused(message: String) -> SendError {
    SendError {
        status: None,
        message,
        retry_after: None,
        permanent: true,
    }
}

impl SheetsSink {
    pub(super) fn new(
        settings: GoogleSheetsSettings,
        http: SinkHttp,
    ) -> Result<SheetsSink, String> {
        let account = ServiceAccount::new(&settings.key, SCOPE)
            .map_err(|e| format!("sink `{}`: {e}", http.name))?;
        for s in account.secrets() {
            http.redactor.add_late(&s);
        }
        Ok(SheetsSink {
            settings,
            account,
            http,
        })
    }

    /// An access token: the cached one, or a fresh JWT exchanged at `token_uri`.
    async fn token(&self) -> Result<String, SendError> {
        let now = self.http.clock.now();
        if let Some(t) = self.account.cached(now) {
            return Ok(t);
        }
        let jwt = self
            .account
            .assertion(now)
            .map_err(|e| refused(format!("sink `{}`: {e}", self.http.name)))?;
        // The signed assertion grants a token for an hour: never in logs or errors.
        self.http.redactor.add_late(&jwt);
        let mut form = reqwest::Url::parse("http://form.invalid/").expect("constant URL parses");
        form.query_pairs_mut()
            .extend_pairs(ServiceAccount::token_form(&jwt));
        let body = form.query().unwrap_or_default().as_bytes().to_vec();
        let (_, text) = self
            .http
            .post(
                self.settings.key.token_uri.as_str(),
                body,
                "application/x-www-form-urlencoded",
                &[],
            )
            .await
            .map_err(|e| {
                let e = e.permanent_if_4xx();
                SendError {
                    message: format!(
                        "{} (token exchange of service account {}: is the key current and not deleted?)",
                        e.message, self.settings.key.client_email
                    ),
                    ..e
                }
            })?;
        let answer: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let token = self
            .account
            .accept(&answer, self.http.clock.now())
            .map_err(|e| SendError {
                status: None,
                message: format!("sink `{}`: {e}", self.http.name),
                retry_after: None,
                permanent: false,
            })?;
        self.http.redactor.add_late(&token);
        Ok(token)
    }

    /// `{api_base}/v4/spreadsheets/{id}[/values/{range}{suffix}]`, each part path-encoded.
    fn url(&self, range: Option<&str>, suffix: &str, query: &[(&str, &str)]) -> String {
        let mut u = self.settings.api_base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty()
                .extend(["v4", "spreadsheets", &self.settings.spreadsheet_id]);
            if let Some(r) = range {
                p.push("values").push(&format!("{r}{suffix}"));
            }
        }
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u.to_string()
    }

    /// One authorized request; a 401 with a cached token drops it and tries once more.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Json>,
    ) -> Result<(u16, String), SendError> {
        let mut last = None;
        for _ in 0..2 {
            let token = self.token().await?;
            let payload = body.map(|b| (b.to_string().into_bytes(), "application/json"));
            match self
                .http
                .request(
                    method.clone(),
                    url,
                    payload,
                    &[("Authorization", format!("Bearer {token}"))],
                )
                .await
            {
                Err(e) if e.status == Some(401) => {
                    self.account.forget();
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.expect("two attempts failed"))
    }

    fn explain(&self, e: SendError, what: &str) -> SendError {
        let e = e.permanent_if_4xx();
        let hint = match e.status {
            Some(400) => "; check the tab name and the A1 range (`Tab!C2`)".to_string(),
            Some(403) => format!(
                "; share the spreadsheet with {} as Editor, and enable the Google Sheets API in its project",
                self.settings.key.client_email
            ),
            Some(404) => {
                "; no such spreadsheet: check spreadsheet_id (from /spreadsheets/d/<id>/edit)"
                    .into()
            }
            _ => String::new(),
        };
        SendError {
            message: format!("{} ({what}){hint}", e.message),
            ..e
        }
    }
}

/// The A1 range of the log tab's five columns, the tab quoted as A1 notation allows.
fn log_range(tab: &str) -> String {
    format!("'{}'!A:E", tab.replace('\'', "''"))
}

/// The log tab's range for digest rows: the five check-in columns, `digest`, the change.
fn digest_range(tab: &str) -> String {
    format!("'{}'!A:G", tab.replace('\'', "''"))
}

impl SheetsSink {
    /// Appends a digest to the log tab, one row per key result (see
    /// [`super::digest::sheet_rows`]); without a log tab there is nowhere to put it.
    pub(super) async fn send_digest(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let Some(tab) = &self.settings.log_tab else {
            return Err(refused(format!(
                "sink `{}`: a digest goes to the log tab, and this sink has no `log_tab`",
                self.http.name
            )));
        };
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let rows = super::digest::sheet_rows(&body);
        if rows.is_empty() {
            return Ok(200);
        }
        let url = self.url(
            Some(&digest_range(tab)),
            ":append",
            &[
                ("valueInputOption", "RAW"),
                ("insertDataOption", "INSERT_ROWS"),
            ],
        );
        let payload = json!({"majorDimension": "ROWS", "values": rows});
        self.call(reqwest::Method::POST, &url, Some(&payload))
            .await
            .map_err(|e| self.explain(e, &format!("log tab `{tab}`, digest")))
            .map(|(status, _)| status)
    }
}

impl Sink for SheetsSink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let kr = key_result_id(&body);
        let value = value_number(&body);
        let mut status = 200;
        if let (Some(cell), Some(v)) = (self.settings.cells.get(kr), &value) {
            let url = self.url(Some(cell), "", &[("valueInputOption", "RAW")]);
            let payload = json!({"range": cell, "majorDimension": "ROWS", "values": [[v]]});
            status = self
                .call(reqwest::Method::PUT, &url, Some(&payload))
                .await
                .map_err(|e| self.explain(e, &format!("cell {cell} of key result `{kr}`")))?
                .0;
        }
        if let Some(tab) = &self.settings.log_tab {
            let url = self.url(
                Some(&log_range(tab)),
                ":append",
                &[
                    ("valueInputOption", "RAW"),
                    ("insertDataOption", "INSERT_ROWS"),
                ],
            );
            let row = json!([
                body.get("at").cloned().unwrap_or(Json::Null),
                kr,
                value.map(Json::Number).unwrap_or(Json::Null),
                body.get("progress").cloned().unwrap_or(Json::Null),
                body.get("status").cloned().unwrap_or(Json::Null),
            ]);
            let payload = json!({"majorDimension": "ROWS", "values": [row]});
            status = self
                .call(reqwest::Method::POST, &url, Some(&payload))
                .await
                .map_err(|e| self.explain(e, &format!("log tab `{tab}`, key result `{kr}`")))?
                .0;
        }
        Ok(status)
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        let url = self.url(
            None,
            "",
            &[("fields", "properties.title,sheets.properties.title")],
        );
        let (_, text) = self
            .call(reqwest::Method::GET, &url, None)
            .await
            .map_err(|e| self.explain(e, "reading the spreadsheet").message)?;
        let v: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let tabs: Vec<&str> = v
            .get("sheets")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.pointer("/properties/title").and_then(Json::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let mut notes = vec![format!(
            "service account {} can open spreadsheet `{}`",
            self.settings.key.client_email,
            v.pointer("/properties/title")
                .and_then(Json::as_str)
                .unwrap_or("?")
        )];
        let mut problems = Vec::new();
        let wanted = self
            .settings
            .cells
            .iter()
            .map(|(kr, cell)| {
                let tab = cell.rsplit_once('!').map_or("", |(t, _)| t);
                (
                    format!("cell {cell} (key result `{kr}`)"),
                    tab.trim_matches('\'').replace("''", "'"),
                )
            })
            .chain(
                self.settings
                    .log_tab
                    .iter()
                    .map(|t| ("log_tab".to_string(), t.clone())),
            );
        for (what, tab) in wanted {
            if tabs.contains(&tab.as_str()) {
                notes.push(format!("{what}: tab `{tab}` exists"));
            } else {
                problems.push(format!(
                    "{what}: no tab `{tab}` in the spreadsheet (tabs: {})",
                    tabs.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(notes)
        } else {
            Err(problems.join("; "))
        }
    }
}
