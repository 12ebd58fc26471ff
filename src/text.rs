//! Wording shared by every message okrsync prints or records: counts with their noun,
//! thousands separators for people (never in JSON or CSV).
//! Depends on nothing.

/// Thousands separators in the first number of `text`, for tables only (JSON, CSV and the
/// bodies sinks send keep plain numbers): `-1234.50` → `-1,234.50`, `16740` → `16,740`.
pub fn group_digits(text: &str) -> String {
    let Some(start) = text.find(|c: char| c.is_ascii_digit()) else {
        return text.to_string();
    };
    let end = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |e| start + e);
    let digits = &text[start..end];
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}{}", &text[..start], &text[end..])
}

/// A count with its noun, in the plural unless the count is 1: `1 sample`, `2 samples`,
/// `0 entries`, `3 key results`.
pub fn plural(n: u64, noun: &str) -> String {
    format!("{n} {}", plural_noun(n, noun))
}

/// `noun` as it goes with `n`: itself for 1, else its English plural (`entry` → `entries`,
/// `retry` → `retries`, `key result` → `key results`).
pub fn plural_noun(n: u64, noun: &str) -> String {
    if n == 1 {
        return noun.to_string();
    }
    let consonant_y =
        noun.ends_with('y') && !noun[..noun.len() - 1].ends_with(|c: char| "aeiou".contains(c));
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(plural(1, "sample"), "1 sample");
        assert_eq!(plural(0, "sample"), "0 samples");
        assert_eq!(plural(2, "page"), "2 pages");
        assert_eq!(plural(1, "entry"), "1 entry");
        assert_eq!(plural(5, "entry"), "5 entries");
        assert_eq!(plural(2, "retry"), "2 retries");
        assert_eq!(plural(2, "day"), "2 days");
        assert_eq!(plural(3, "key result"), "3 key results");
        assert_eq!(plural(2, "check-in"), "2 check-ins");
        assert_eq!(plural(2, "pass"), "2 passes");
    }
}
