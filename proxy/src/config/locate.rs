//! Finds the line of a key path such as `routes.2.upstream` in the config text, so validation
//! errors (found after parsing) can point at a line like parse errors do.

/// Best-effort line number (1-based) of `path` in `text`; falls back to the table's header line,
/// then to 1.
pub fn line_of_path(text: &str, path: &[String]) -> usize {
    let mut table = String::new();
    let mut index: Option<usize> = None;
    let mut key: Option<&str> = None;
    for part in path {
        if let Ok(i) = part.parse::<usize>() {
            index = Some(i);
        } else if index.is_none() && key.is_none() && table.is_empty() {
            table = part.clone();
        } else if key.is_none() {
            key = Some(part.as_str());
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    // Find the start of the table (the n-th `[[table]]` or the `[table]` header).
    let mut start = 0;
    let mut seen = 0;
    let mut found = false;
    for (n, line) in lines.iter().enumerate() {
        let t = line.trim();
        let is_array = t == format!("[[{table}]]");
        let is_table = t == format!("[{table}]");
        if is_array && Some(seen) == index || is_table {
            start = n;
            found = true;
            break;
        }
        if is_array {
            seen += 1;
        }
    }
    if !found {
        return 1;
    }
    if let Some(key) = key {
        for (n, line) in lines.iter().enumerate().skip(start + 1) {
            let t = line.trim_start();
            if t.starts_with("[[") && !t.contains(&format!("[[{table}.")) {
                break;
            }
            if t.starts_with(&format!("[{table}.{key}"))
                || t.starts_with(&format!("[[{table}.{key}"))
            {
                return n + 1;
            }
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return n + 1;
                }
            }
        }
    }
    start + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_in_nth_array_table() {
        let text = "[[routes]]\nname = \"a\"\nupstream = \"x\"\n\n[[routes]]\nname = \"b\"\nupstream = \"y\"\n";
        let path = vec!["routes".to_string(), "1".into(), "upstream".into()];
        assert_eq!(line_of_path(text, &path), 7);
        let path = vec!["routes".to_string(), "0".into(), "name".into()];
        assert_eq!(line_of_path(text, &path), 2);
    }
}
