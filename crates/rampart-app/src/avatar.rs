//! Profile pictures: validation, re-encoding and storage. Axum-free.
//!
//! An upload is trusted for nothing: its format is sniffed from the bytes (PNG, JPEG or WebP
//! only; the file name and the browser's content type are ignored), it is decoded by the `image`
//! crate under dimension and memory limits (the dimensions are read from the header first: more
//! than [`MAX_INPUT_SIDE`] pixels a side or [`MAX_INPUT_PIXELS`] in all is refused without
//! decoding), scaled down to [`AVATAR_MAX_SIDE`] pixels and
//! re-encoded (PNG when it has transparency, JPEG otherwise), so what we store and serve is an
//! image we wrote ourselves. Files live in `<instance>/media/avatars/` under a random name
//! prefixed with the owner's id (`<user id>-<32 hex>.png`), served from `/media/avatars/<name>`.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest upload accepted, in bytes (2 MiB).
pub const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The upload limit as shown to people.
pub const AVATAR_MAX_TEXT: &str = "2 MB";

/// Stored pictures are at most this many pixels wide and high.
pub const AVATAR_MAX_SIDE: u32 = 512;

/// Uploads wider or higher than this are refused before decoding.
pub const MAX_INPUT_SIDE: u32 = 4_096;

/// Uploads of more pixels than this (16 megapixels) are refused before decoding.
pub const MAX_INPUT_PIXELS: u64 = 16_000_000;

/// The most memory one decode may allocate (a 16-megapixel picture at 4 bytes a pixel, and some
/// room; deeper pictures that need more are refused as unreadable).
pub const DECODE_MAX_ALLOC: u64 = 80 * 1024 * 1024;

/// Pictures decoded at once by default (`RAMPART_AVATAR_DECODES`); more uploads meanwhile are
/// answered 503 with `Retry-After`.
pub const DEFAULT_MAX_DECODES: usize = 2;

/// The `Retry-After` (seconds) of an upload refused because every decode slot is busy.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

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
    /// More than [`MAX_INPUT_SIDE`] pixels wide or high, or more than [`MAX_INPUT_PIXELS`].
    #[error(
        "The picture is too large: {width}×{height} pixels; the limit is 4096×4096 pixels \
         (16 megapixels)."
    )]
    TooManyPixels {
        /// The width the header declares.
        width: u32,
        /// The height the header declares.
        height: u32,
    },
    /// Sniffed as an image, but it could not be decoded.
    #[error("The picture could not be read; it may be damaged. Try another one.")]
    Unreadable,
    /// Every decode slot is busy ([`MediaStore::try_decode_permit`]); try again shortly.
    #[error("The server is busy with other pictures. Try again in a few seconds.")]
    Busy,
}

impl AvatarRejection {
    /// Whether the upload was refused for its size (in bytes or pixels).
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge | Self::TooManyPixels { .. })
    }
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
    // The header's dimensions first: nothing is decoded for a picture too large in pixels.
    let (width, height) = ImageReader::with_format(Cursor::new(data), format)
        .into_dimensions()
        .map_err(|_| AvatarRejection::Unreadable)?;
    if width > MAX_INPUT_SIDE
        || height > MAX_INPUT_SIDE
        || u64::from(width) * u64::from(height) > MAX_INPUT_PIXELS
    {
        return Err(AvatarRejection::TooManyPixels { width, height });
    }
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(DECODE_MAX_ALLOC);
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

/// `url` when it is an avatar URL the app could have written (`/media/avatars/<name>` of a file
/// name of ours), else `None`: pages and the API show no other text as a picture.
pub fn stored_url(url: Option<&str>) -> Option<&str> {
    url.filter(|url| {
        url.strip_prefix(AVATAR_URL_PREFIX)
            .and_then(content_type)
            .is_some()
    })
}

/// Where uploaded files live: `<instance>/media`, and the slots for decoding uploads.
#[derive(Clone, Debug)]
pub struct MediaStore {
    dir: PathBuf,
    decodes: Arc<Semaphore>,
}

impl MediaStore {
    /// The store under `instance_dir` (`<instance>/media`; created on the first upload), with
    /// [`DEFAULT_MAX_DECODES`] decode slots.
    pub fn new(instance_dir: &Path) -> Self {
        Self {
            dir: instance_dir.join("media"),
            decodes: Arc::new(Semaphore::new(DEFAULT_MAX_DECODES)),
        }
    }

    /// The same store with `max` pictures decoded at once (0 refuses every upload as busy).
    #[must_use]
    pub fn with_max_decodes(mut self, max: usize) -> Self {
        self.decodes = Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)));
        self
    }

    /// A decode slot, held while a picture is decoded, or `None` when all are busy.
    pub fn try_decode_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.decodes).try_acquire_owned().ok()
    }

    /// Checks and re-encodes an upload ([`process`]) off the async runtime, in a decode slot.
    ///
    /// # Errors
    ///
    /// [`AvatarRejection::Busy`] when every slot is taken; else as [`process`].
    pub async fn process_upload(&self, data: Vec<u8>) -> Result<Avatar, AvatarRejection> {
        let Some(permit) = self.try_decode_permit() else {
            return Err(AvatarRejection::Busy);
        };
        let decoded = tokio::task::spawn_blocking(move || {
            let result = process(&data);
            drop(permit);
            result
        })
        .await;
        // A panic in the decoder is a picture we cannot read.
        decoded.unwrap_or(Err(AvatarRejection::Unreadable))
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
        let name = format!("{user_id}-{}.{}", rampart::random_hex(16), avatar.extension);
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
    /// `avatar` may hold older text once set through the API; files of other users are never
    /// touched).
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

    /// An all-black 1-bit PNG, written row by row: tiny when compressed, however large.
    pub(crate) fn blank_png(width: u32, height: u32) -> Vec<u8> {
        use std::io::Write as _;
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; width.div_ceil(8) as usize];
        for _ in 0..height {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn huge_pictures_are_refused_from_their_header() {
        // 64 megapixels of zeros (the probe's 8000×8000): refused without decoding.
        let bomb = blank_png(8_000, 8_000);
        assert!(bomb.len() < AVATAR_MAX_BYTES, "{}", bomb.len());
        let start = std::time::Instant::now();
        assert_eq!(
            process(&bomb).unwrap_err(),
            AvatarRejection::TooManyPixels {
                width: 8_000,
                height: 8_000
            }
        );
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
        // Each side within 4096, but more than 16 megapixels in all.
        assert_eq!(
            process(&blank_png(4_096, 4_000)).unwrap_err(),
            AvatarRejection::TooManyPixels {
                width: 4_096,
                height: 4_000
            }
        );
        // One side too long.
        assert!(matches!(
            process(&blank_png(5_000, 10)).unwrap_err(),
            AvatarRejection::TooManyPixels { .. }
        ));
        // At the limits, fine.
        let avatar = process(&blank_png(4_000, 4_000)).unwrap();
        assert_eq!((avatar.width, avatar.height), (512, 512));
        assert!(
            AvatarRejection::TooManyPixels {
                width: 1,
                height: 1
            }
            .is_too_large()
        );
    }

    #[tokio::test]
    async fn decodes_wait_for_a_slot_or_are_refused_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path()).with_max_decodes(1);
        let picture = encoded(
            DynamicImage::ImageRgb8(RgbImage::new(8, 8)),
            ImageFormat::Png,
        );
        let held = store.try_decode_permit().unwrap();
        assert!(store.try_decode_permit().is_none());
        assert_eq!(
            store.process_upload(picture.clone()).await.unwrap_err(),
            AvatarRejection::Busy
        );
        drop(held);
        assert!(store.process_upload(picture.clone()).await.is_ok());
        // The slot is given back after a decode, refused or not.
        assert!(store.process_upload(b"nope".to_vec()).await.is_err());
        assert!(store.try_decode_permit().is_some());
        let closed = MediaStore::new(dir.path()).with_max_decodes(0);
        assert_eq!(
            closed.process_upload(picture).await.unwrap_err(),
            AvatarRejection::Busy
        );
    }

    #[test]
    fn only_urls_of_our_files_are_shown() {
        let url = format!("{AVATAR_URL_PREFIX}12-{}.png", "a".repeat(32));
        assert_eq!(stored_url(Some(&url)), Some(url.as_str()));
        for bad in [
            "javascript:alert(1)",
            "https://evil.example/x.png",
            "//evil.example/media/avatars/12-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.png",
            "/media/avatars/../../secrets.toml",
            "/media/avatars/12-abc.png",
            "/media/avatars/12-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.png\" onerror=\"alert(1)",
            "",
        ] {
            assert_eq!(stored_url(Some(bad)), None, "{bad}");
        }
        assert_eq!(stored_url(None), None);
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
