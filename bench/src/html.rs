//! Reading the server's HTML forms: the value of a named input, HTML-unescaped.

/// The value of the input named `name` in a page, unescaped.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

/// Undoes the HTML escaping of an attribute value: named and numeric character references.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match entity.strip_prefix('#') {
                    Some(hex) if hex.starts_with(['x', 'X']) => {
                        u32::from_str_radix(&hex[1..], 16).ok().and_then(char::from_u32)
                    }
                    Some(decimal) => decimal.parse().ok().and_then(char::from_u32),
                    None => None,
                },
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_inputs_are_found_and_unescaped() {
        let page = r#"<input type="hidden" name="csrf_token" value="abc">
            <input type="hidden" name="return_to" value="/authorize?a=1&#38;b=&#x27;2&#x27;&amp;c">"#;
        assert_eq!(hidden_input(page, "csrf_token").as_deref(), Some("abc"));
        assert_eq!(hidden_input(page, "return_to").as_deref(), Some("/authorize?a=1&b='2'&c"));
        assert_eq!(hidden_input(page, "request"), None);
        assert_eq!(unescape("a & b &bogus; &#65;"), "a & b &bogus; A");
    }
}
