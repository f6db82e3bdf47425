//! The page and its static files, embedded in the binary: `GET /` and `GET /static/{file}`
//! (OpenSeadragon vendored from the npm registry, see `page/vendor/openseadragon/`).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");

/// The embedded files: name, type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript", include_bytes!("page/app.js")),
    ("app.css", "text/css", include_bytes!("page/app.css")),
    ("osd/openseadragon.min.js", "text/javascript", include_bytes!("page/vendor/openseadragon/openseadragon.min.js")),
    ("osd/LICENSE.txt", "text/plain", include_bytes!("page/vendor/openseadragon/LICENSE.txt")),
];

/// OpenSeadragon's button images the page uses.
macro_rules! osd_images {
    ($($b:literal),*) => {
        &[$(
            (concat!("osd/images/", $b, "_rest.png"), include_bytes!(concat!("page/vendor/openseadragon/images/", $b, "_rest.png")).as_slice()),
            (concat!("osd/images/", $b, "_grouphover.png"), include_bytes!(concat!("page/vendor/openseadragon/images/", $b, "_grouphover.png")).as_slice()),
            (concat!("osd/images/", $b, "_hover.png"), include_bytes!(concat!("page/vendor/openseadragon/images/", $b, "_hover.png")).as_slice()),
            (concat!("osd/images/", $b, "_pressed.png"), include_bytes!(concat!("page/vendor/openseadragon/images/", $b, "_pressed.png")).as_slice()),
        )*]
    };
}
const IMAGES: &[(&str, &[u8])] = osd_images!("zoomin", "zoomout", "home", "fullpage");

/// `GET /`.
pub(super) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], INDEX).into_response()
}

/// `GET /static/{file}` (and `/static/osd/...`, routed by the file's full name).
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

/// `GET /static/osd/{*path}`.
pub(super) async fn osd(Path(path): Path<String>) -> Response {
    serve(&format!("osd/{path}"))
}

fn serve(name: &str) -> Response {
    if let Some((_, mime, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) {
        return ([(header::CONTENT_TYPE, *mime)], *bytes).into_response();
    }
    if let Some((_, bytes)) = IMAGES.iter().find(|(n, _)| *n == name) {
        return ([(header::CONTENT_TYPE, "image/png")], *bytes).into_response();
    }
    (StatusCode::NOT_FOUND, "no such file").into_response()
}
