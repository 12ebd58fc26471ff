//! CSV as spreadsheets read it (RFC 4180): a header row, CRLF line ends, a cell quoted when it
//! holds a comma, a quote or a line break, quotes doubled inside.

/// One cell, quoted when needed.
pub fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A header row and the rows, each line ended by CRLF.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells.map(csv_cell).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut headers.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_only_what_needs_it_and_ends_lines_with_crlf() {
        let out = super::csv(
            &["a", "b"],
            &[
                vec!["12.50".into(), "plain".into()],
                vec!["x,y".into(), "say \"hi\"\nthere".into()],
            ],
        );
        assert_eq!(
            out,
            "a,b\r\n12.50,plain\r\n\"x,y\",\"say \"\"hi\"\"\nthere\"\r\n"
        );
    }
}
