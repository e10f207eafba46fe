//! How the pages look, chosen when the server starts (docs/REFERENCE.md §3.13): the built-in
//! templates or a deployment's own from a folder, its product name and logo, its colours.
//! Every template is parsed at start, so a broken one stops the server there, not a page later.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::Brand;

/// The built-in templates, compiled into the binary.
const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("login_totp.html", include_str!("../../templates/login_totp.html")),
    ("totp_setup.html", include_str!("../../templates/totp_setup.html")),
    ("totp_recovery.html", include_str!("../../templates/totp_recovery.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("device.html", include_str!("../../templates/device.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("console/nav.html", include_str!("../../templates/console/nav.html")),
    ("console/dashboard.html", include_str!("../../templates/console/dashboard.html")),
    ("console/signed_out.html", include_str!("../../templates/console/signed_out.html")),
    ("console/clients.html", include_str!("../../templates/console/clients.html")),
    ("console/client.html", include_str!("../../templates/console/client.html")),
    ("console/client_new.html", include_str!("../../templates/console/client_new.html")),
    ("console/client_delete.html", include_str!("../../templates/console/client_delete.html")),
    ("console/events.html", include_str!("../../templates/console/events.html")),
    ("console/client_edit.html", include_str!("../../templates/console/client_edit.html")),
    ("console/client_fields.html", include_str!("../../templates/console/client_fields.html")),
    ("console/keys.html", include_str!("../../templates/console/keys.html")),
    ("console/keys_rotate.html", include_str!("../../templates/console/keys_rotate.html")),
    ("console/scope.html", include_str!("../../templates/console/scope.html")),
    ("console/scope_delete.html", include_str!("../../templates/console/scope_delete.html")),
    ("console/scopes.html", include_str!("../../templates/console/scopes.html")),
    ("console/users.html", include_str!("../../templates/console/users.html")),
    ("console/user.html", include_str!("../../templates/console/user.html")),
    ("console/user_new.html", include_str!("../../templates/console/user_new.html")),
];

/// The built-in stylesheet.
const STYLESHEET: &str = include_str!("../../static/castellan.css");
/// The largest logo, and the largest template or stylesheet, read from disk.
const FILE_LIMIT: u64 = 256 * 1024;
/// How deep a theme folder is searched for templates (`console/` is one level).
const FOLDER_DEPTH: usize = 3;

/// A page: its context, and the template that renders it.
pub trait Page: Serialize {
    const TEMPLATE: &'static str;
    /// Whether the page runs our own script files (`script-src 'self'`); never inline script.
    const SCRIPTED: bool = false;
}

/// The product name and whether there is a logo: what every template sees as `brand`.
#[derive(Serialize)]
struct BrandView<'a> {
    name: &'a str,
    logo: bool,
}

/// An image served at `/static/logo`.
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

pub struct Theme {
    env: Environment<'static>,
    stylesheet: String,
    logo: Option<Logo>,
}

impl Theme {
    /// The theme `brand` describes; an unreadable or broken file is an error naming it.
    pub fn load(brand: &Brand) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // A misspelt variable is an error, not an empty string; `{% if x %}` may still ask.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.add_filter("utc", utc);
        for (name, source) in BUILT_IN {
            env.add_template(name, source).with_context(|| format!("built-in template {name}"))?;
        }
        let mut stylesheet = STYLESHEET.to_owned();
        if let Some(dir) = &brand.theme_dir {
            if !dir.is_dir() {
                bail!("CASTELLAN_THEME_DIR {} is not a folder", dir.display());
            }
            let mut found = Vec::new();
            templates_in(dir, dir, 0, &mut found)?;
            for (name, path) in found {
                let source = read_limited(&path)?;
                env.add_template_owned(name, source)
                    .with_context(|| format!("the theme's template {}", path.display()))?;
            }
            let css = dir.join("castellan.css");
            if css.is_file() {
                stylesheet = read_limited(&css)?;
            }
        }
        stylesheet.push_str(&colours(brand));
        let logo = brand.logo.as_deref().map(read_logo).transpose()?;
        let view = BrandView { name: brand.name.trim(), logo: logo.is_some() };
        env.add_global("brand", Value::from(Serde(&view)));
        Ok(Self { env, stylesheet, logo })
    }

    pub fn render<P: Page>(&self, page: &P) -> Result<String, minijinja::Error> {
        self.env.get_template(P::TEMPLATE)?.render(Value::from(Serde(page)))
    }

    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }

    pub fn logo(&self) -> Option<&Logo> {
        self.logo.as_ref()
    }
}

/// The brand's colours as custom properties appended to the stylesheet: the only way they
/// reach a page, since the pages' CSP allows no inline style.
fn colours(brand: &Brand) -> String {
    let mut css = String::new();
    if let Some(accent) = &brand.accent {
        let _ = write!(css, "\n:root {{ --accent: {}; }}", accent.as_str());
    }
    if let Some(background) = &brand.background {
        let _ = write!(css, "\nbody {{ background: {}; }}", background.as_str());
    }
    if !css.is_empty() {
        css.push('\n');
    }
    css
}

/// The `*.html` files under `dir`, named by their path relative to `root` with `/`.
fn templates_in(
    root: &Path,
    dir: &Path,
    depth: usize,
    found: &mut Vec<(String, PathBuf)>,
) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read {}", dir.display()))?.path();
        if path.is_dir() {
            if depth < FOLDER_DEPTH {
                templates_in(root, &path, depth + 1, found)?;
            }
            continue;
        }
        if path.extension().is_some_and(|e| e == "html") {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into()).collect();
            found.push((name.join("/"), path));
        }
    }
    Ok(())
}

fn read_limited(path: &Path) -> anyhow::Result<String> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))
}

fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if size.len() > FILE_LIMIT {
        bail!("{} is larger than {} KiB", path.display(), FILE_LIMIT / 1024);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_logo(path: &Path) -> anyhow::Result<Logo> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let content_type = match extension.as_deref() {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => bail!("CASTELLAN_BRAND_LOGO {} must be .png, .svg, .jpg or .webp", path.display()),
    };
    Ok(Logo { bytes: read_bytes(path)?, content_type })
}

/// `{{ at|utc }}` or `{{ at|utc("%Y-%m-%d") }}`: a serialized timestamp, in UTC.
fn utc(value: String, format: Option<String>) -> Result<String, minijinja::Error> {
    let at: DateTime<Utc> = value.parse().map_err(|_| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "not a timestamp")
    })?;
    let mut out = String::new();
    write!(out, "{}", at.format(format.as_deref().unwrap_or("%Y-%m-%d %H:%M UTC"))).map_err(
        |_| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "a bad date format"),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under templates/ is compiled in: a template added on disk but not to
    /// `BUILT_IN` would fail only when its page is shown.
    #[test]
    fn every_template_on_disk_is_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut found = Vec::new();
        templates_in(&root, &root, 0, &mut found).expect("templates/");
        let mut on_disk: Vec<String> = found.into_iter().map(|(name, _)| name).collect();
        let mut built_in: Vec<String> = BUILT_IN.iter().map(|(n, _)| (*n).to_owned()).collect();
        on_disk.sort();
        built_in.sort();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn colours_reach_the_stylesheet_only_as_checked_hex() {
        let brand = Brand {
            accent: Some(crate::config::Colour::parse("#A1B2C3").expect("colour")),
            ..Brand::default()
        };
        let theme = Theme::load(&brand).expect("theme");
        assert!(theme.stylesheet().ends_with(":root { --accent: #a1b2c3; }\n"));
        assert!(crate::config::Colour::parse("red; } body { display: none").is_err());
        assert!(crate::config::Colour::parse("#12345").is_err());
    }

    #[test]
    fn dates_format_in_utc_and_a_bad_format_is_an_error_not_a_panic() {
        assert_eq!(utc("2026-12-04T10:11:12Z".into(), None).expect("utc"), "2026-12-04 10:11 UTC");
        assert_eq!(utc("2026-12-04T10:11:12Z".into(), Some("%H:00".into())).expect("utc"), "10:00");
        assert!(utc("2026-12-04T10:11:12Z".into(), Some("%Q".into())).is_err());
        assert!(utc("yesterday".into(), None).is_err());
    }
}
