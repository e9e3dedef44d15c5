//! HTML and URL helpers: the path of a mailed link, unescaping, the CSRF field of a form.

/// The path and query of an absolute URL.
pub(crate) fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap_or_else(|e| panic!("{link}: {e}"));
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Undoes the HTML escapes minijinja produces.
pub(crate) fn unescape_html(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `csrf_token` hidden field of an HTML form.
pub(crate) fn csrf_in_html(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token field in {html}"))
        + marker.len();
    let end = html[start..]
        .find('"')
        .expect("end of the csrf_token value");
    html[start..start + end].to_owned()
}
