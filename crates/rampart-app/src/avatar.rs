//! Profile pictures: validation, re-encoding and storage. Axum-free.
//!
//! An upload is trusted for nothing: its format is sniffed from the bytes (PNG, JPEG or WebP
//! only; the file name and the browser's content type are ignored), it is decoded by the `image`
//! crate under dimension and memory limits, scaled down to [`AVATAR_MAX_SIDE`] pixels and
//! re-encoded (PNG when it has transparency, JPEG otherwise), so what we store and serve is an
//! image we wrote ourselves. Files live in `<instance>/media/avatars/` under a random name
//! prefixed with the owner's id (`<user id>-<32 hex>.png`), served from `/media/avatars/<name>`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest upload accepted, in bytes (2 MiB).
pub const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The upload limit as shown to people.
pub const AVATAR_MAX_TEXT: &str = "2 MB";

/// Stored pictures are at most this many pixels wide and high.
pub const AVATAR_MAX_SIDE: u32 = 512;

/// Uploads wider or higher than this are refused before decoding.
const MAX_INPUT_SIDE: u32 = 8_000;

/// The URL path under which avatars are served.
pub const AVATAR_URL_PREFIX: &str = "/media/avatars/";

/// Why an upload was refused (the message is shown next to the field).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AvatarRejection {
    /// Larger than [`AVATAR_MAX_BYTES`].
    #[error("The picture is too large: the limit is {AVATAR_MAX_TEXT}.")]
    TooLarge,
    /// Not a PNG, JPEG or WebP file.
    #[error("Choose a PNG, JPEG or WebP picture.")]
    UnsupportedFormat,
    /// Sniffed as an image, but it could not be decoded (or it is too large in pixels).
    #[error("The picture could not be read; it may be damaged. Try another one.")]
    Unreadable,
}

/// A picture ready to be stored.
#[derive(Clone, Debug)]
pub struct Avatar {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// `png` or `jpg`.
    pub extension: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Sniffs, decodes, scales and re-encodes an upload. CPU-bound: call it from a blocking task.
///
/// # Errors
///
/// [`AvatarRejection`] saying what is wrong with the upload.
pub fn process(data: &[u8]) -> Result<Avatar, AvatarRejection> {
    if data.len() > AVATAR_MAX_BYTES {
        return Err(AvatarRejection::TooLarge);
    }
    let format = match image::guess_format(data) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => format,
        _ => return Err(AvatarRejection::UnsupportedFormat),
    };
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|_| AvatarRejection::Unreadable)?;
    let image = if image.width() > AVATAR_MAX_SIDE || image.height() > AVATAR_MAX_SIDE {
        image.thumbnail(AVATAR_MAX_SIDE, AVATAR_MAX_SIDE)
    } else {
        image
    };
    encode(&image)
}

fn encode(image: &DynamicImage) -> Result<Avatar, AvatarRejection> {
    let mut bytes = Vec::new();
    let extension = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.to_rgba8())
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|_| AvatarRejection::Unreadable)?;
        "png"
    } else {
        let rgb = image.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), 85)
            .encode_image(&rgb)
            .map_err(|_| AvatarRejection::Unreadable)?;
        "jpg"
    };
    Ok(Avatar {
        bytes,
        extension,
        width: image.width(),
        height: image.height(),
    })
}

/// The content type of a stored file name, when the name is one we could have written.
pub fn content_type(name: &str) -> Option<&'static str> {
    let (stem, extension) = name.rsplit_once('.')?;
    let (owner, random) = stem.split_once('-')?;
    let valid = !owner.is_empty()
        && owner.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 32
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return None;
    }
    match extension {
        "png" => Some("image/png"),
        "jpg" => Some("image/jpeg"),
        _ => None,
    }
}

/// Where uploaded files live: `<instance>/media`.
#[derive(Clone, Debug)]
pub struct MediaStore {
    dir: PathBuf,
}

impl MediaStore {
    /// The store under `instance_dir` (`<instance>/media`; created on the first upload).
    pub fn new(instance_dir: &Path) -> Self {
        Self {
            dir: instance_dir.join("media"),
        }
    }

    /// The folder of avatars.
    pub fn avatar_dir(&self) -> PathBuf {
        self.dir.join("avatars")
    }

    /// Stores `avatar` for `user_id` under a new random name and returns its URL path.
    ///
    /// # Errors
    ///
    /// The file system's error.
    pub async fn save_avatar(&self, user_id: i64, avatar: &Avatar) -> std::io::Result<String> {
        let dir = self.avatar_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let name = format!(
            "{user_id}-{}.{}",
            rampart::token::random_hex(16),
            avatar.extension
        );
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(&name))
            .await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &avatar.bytes).await?;
        tokio::io::AsyncWriteExt::flush(&mut file).await?;
        Ok(format!("{AVATAR_URL_PREFIX}{name}"))
    }

    /// The bytes and content type of the avatar `name`, if it exists.
    ///
    /// # Errors
    ///
    /// The file system's error (other than "not found").
    pub async fn read_avatar(
        &self,
        name: &str,
    ) -> std::io::Result<Option<(Vec<u8>, &'static str)>> {
        let Some(content_type) = content_type(name) else {
            return Ok(None);
        };
        match tokio::fs::read(self.avatar_dir().join(name)).await {
            Ok(bytes) => Ok(Some((bytes, content_type))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Deletes the avatar at `url` if it is a file of ours belonging to `user_id` (a profile's
    /// `avatar` may hold any text set through the API; files of other users are never touched).
    /// Failures are logged: a stray file must not fail the request that replaced it.
    pub async fn delete_avatar(&self, user_id: i64, url: Option<&str>) {
        let Some(name) = url.and_then(|u| u.strip_prefix(AVATAR_URL_PREFIX)) else {
            return;
        };
        let owned = name
            .split_once('-')
            .is_some_and(|(owner, _)| owner == user_id.to_string());
        if !owned || content_type(name).is_none() {
            return;
        }
        match tokio::fs::remove_file(self.avatar_dir().join(name)).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(%error, name, "cannot delete an avatar file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    #[test]
    fn a_large_photo_is_scaled_down_and_stored_as_jpeg() {
        let photo = RgbImage::from_pixel(1200, 800, Rgb([200, 80, 40]));
        let avatar = process(&encoded(DynamicImage::ImageRgb8(photo), ImageFormat::Png)).unwrap();
        assert_eq!(avatar.extension, "jpg");
        assert_eq!((avatar.width, avatar.height), (512, 341));
        assert_eq!(
            image::guess_format(&avatar.bytes).unwrap(),
            ImageFormat::Jpeg
        );
    }

    #[test]
    fn transparency_is_kept_as_png() {
        let logo = RgbaImage::from_pixel(64, 64, Rgba([0, 0, 255, 100]));
        let avatar = process(&encoded(DynamicImage::ImageRgba8(logo), ImageFormat::Png)).unwrap();
        assert_eq!(avatar.extension, "png");
        assert_eq!((avatar.width, avatar.height), (64, 64));
    }

    #[test]
    fn webp_is_accepted() {
        let image = RgbaImage::from_pixel(10, 10, Rgba([1, 2, 3, 255]));
        let avatar = process(&encoded(DynamicImage::ImageRgba8(image), ImageFormat::WebP)).unwrap();
        assert_eq!(avatar.extension, "png");
    }

    #[test]
    fn content_is_sniffed_not_trusted() {
        assert_eq!(
            process(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
                .unwrap_err(),
            AvatarRejection::UnsupportedFormat
        );
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(
            process(gif).unwrap_err(),
            AvatarRejection::UnsupportedFormat
        );
        let mut truncated = encoded(
            DynamicImage::ImageRgb8(RgbImage::new(50, 50)),
            ImageFormat::Png,
        );
        truncated.truncate(40);
        assert_eq!(
            process(&truncated).unwrap_err(),
            AvatarRejection::Unreadable
        );
        assert_eq!(
            process(&vec![0; AVATAR_MAX_BYTES + 1]).unwrap_err(),
            AvatarRejection::TooLarge
        );
    }

    #[test]
    fn only_names_we_write_are_served() {
        let name = format!("12-{}.png", "a".repeat(32));
        assert_eq!(content_type(&name), Some("image/png"));
        assert_eq!(
            content_type(&name.replace(".png", ".jpg")),
            Some("image/jpeg")
        );
        for bad in [
            "../secrets.toml",
            "12-abc.png",
            &format!("x-{}.png", "a".repeat(32)),
            &format!("12-{}.svg", "a".repeat(32)),
            &format!("12-{}.png", "A".repeat(32)),
        ] {
            assert_eq!(content_type(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn files_are_saved_read_and_deleted_only_by_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let avatar = process(&encoded(
            DynamicImage::ImageRgb8(RgbImage::new(8, 8)),
            ImageFormat::Png,
        ))
        .unwrap();
        let url = store.save_avatar(7, &avatar).await.unwrap();
        let name = url.strip_prefix(AVATAR_URL_PREFIX).unwrap();
        assert!(store.read_avatar(name).await.unwrap().is_some());
        store.delete_avatar(8, Some(&url)).await;
        assert!(store.read_avatar(name).await.unwrap().is_some());
        store.delete_avatar(7, Some(&url)).await;
        assert!(store.read_avatar(name).await.unwrap().is_none());
    }
}
