import CQwenMedia
import QwenFormats

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B): what the Qwen-VL image processor takes.
/// Decoded from PNG (libpng) or JPEG (libjpeg-turbo) the way the reference pipeline sees a file — Pillow opening
/// it, transformers' `load_image` applying the EXIF orientation, the image processor's `convert_to_rgb`
/// compositing transparency onto white — or made from a host's own RGB bytes.
public final class RGBImage: @unchecked Sendable {
    public let width: Int
    public let height: Int
    /// width × height × 3 bytes.
    public let pixels: [UInt8]
    /// FNV-1a over the size and the pixels: equal images have equal keys.
    public let key: UInt64

    /// Pillow's decompression-bomb threshold (`Image.MAX_IMAGE_PIXELS`), the default limit for decoded images.
    public static let defaultPixelLimit = 89_478_485

    public struct DecodeOptions: Sendable {
        /// Images with more pixels are refused before any pixel memory is allocated.
        public var maxPixels = RGBImage.defaultPixelLimit
        /// Apply the EXIF orientation tag (as transformers' `load_image` does with `ImageOps.exif_transpose`).
        public var applyOrientation = true
        public init() {}
    }

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20 else {
            throw QwenError.invalidArgument("image size \(width)x\(height) is invalid")
        }
        guard pixels.count == width * height * 3 else {
            throw QwenError.invalidArgument("\(pixels.count) bytes do not make a \(width)x\(height) RGB image")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
        var h = FNV1a()
        h.add(UInt64(width))
        h.add(UInt64(height))
        pixels.withUnsafeBytes { h.add($0) }
        key = h.value
    }

    /// Copies `width × height × 3` bytes of interleaved RGB.
    public convenience init(rgb: UnsafeRawBufferPointer, width: Int, height: Int, maxPixels: Int = RGBImage.defaultPixelLimit) throws {
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20 else {
            throw QwenError.invalidArgument("image size \(width)x\(height) is invalid")
        }
        guard width * height <= maxPixels else {
            throw QwenError.unsupported("image of \(width)x\(height) = \(width * height) pixels exceeds the limit of \(maxPixels) pixels")
        }
        guard rgb.count >= width * height * 3 else {
            throw QwenError.invalidArgument("\(rgb.count) bytes do not make a \(width)x\(height) RGB image")
        }
        try self.init(width: width, height: height, pixels: Array(rgb.prefix(width * height * 3)))
    }

    /// Decodes a PNG or JPEG file.
    public static func load(path: String, options: DecodeOptions = DecodeOptions()) throws -> RGBImage {
        guard !path.isEmpty else { throw QwenError.invalidArgument("empty image path") }
        guard fileExists(path) else { throw QwenError.io("'\(path)' does not exist") }
        let file = try FileBytes(path: path, map: true)
        do {
            return try decode(file.buffer, options: options)
        } catch let e as QwenError {
            throw QwenError(e.status, "'\(path)': \(e.message)")
        }
    }

    /// Decodes PNG or JPEG bytes (recognized by their signature).
    public static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions = DecodeOptions()) throws -> RGBImage {
        guard options.maxPixels > 0 else { throw QwenError.invalidArgument("the pixel limit must be positive") }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count >= 4 else {
            throw QwenError.format("not a PNG or JPEG image (\(bytes.count) bytes)")
        }
        let isPNG = bytes.count >= 8 && bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let isJPEG = bytes.starts(with: [0xFF, 0xD8, 0xFF])
        guard isPNG || isJPEG else { throw QwenError.format("not a PNG or JPEG image") }
        var decoded = cqm_image()
        var message = [CChar](repeating: 0, count: 256)
        let rc = message.withUnsafeMutableBufferPointer { m in
            isPNG ? cqm_decode_png(base, bytes.count, Int64(options.maxPixels), &decoded, m.baseAddress, m.count)
                : cqm_decode_jpeg(base, bytes.count, Int64(options.maxPixels), &decoded, m.baseAddress, m.count)
        }
        defer { cqm_image_free(&decoded) }
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        switch Int32(rc) {
        case Int32(CQM_OK): break
        case Int32(CQM_TOO_LARGE): throw QwenError.unsupported(text)
        case Int32(CQM_NO_MEMORY): throw QwenError.outOfMemory(text)
        case Int32(CQM_UNSUPPORTED): throw QwenError.unsupported(text)
        default: throw QwenError.format(text.isEmpty ? "malformed image" : text)
        }
        guard let src = decoded.pixels else { throw QwenError.format("decoder returned no pixels") }
        let w = Int(decoded.width), h = Int(decoded.height), channels = Int(decoded.channels)
        let rgb = toRGB(src, count: w * h, channels: channels, cmyk: decoded.is_cmyk != 0)
        let orientation = options.applyOrientation ? Int(decoded.orientation) : 1
        let (ow, oh, oriented) = orient(rgb, width: w, height: h, orientation: orientation)
        return try RGBImage(width: ow, height: oh, pixels: oriented)
    }

    /// Pillow's conversions to RGB: gray replicated; gray+alpha and RGBA composited onto an opaque white
    /// background with `Image.alpha_composite`'s integer arithmetic (what transformers' `convert_to_rgb` does);
    /// CMYK read as Adobe-inverted ("CMYK;I") and converted with Pillow's `cmyk2rgb`.
    static func toRGB(_ src: UnsafePointer<UInt8>, count: Int, channels: Int, cmyk: Bool) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count * 3) { out, filled in
            switch (channels, cmyk) {
            case (1, _):
                for i in 0 ..< count { out[3 * i] = src[i]; out[3 * i + 1] = src[i]; out[3 * i + 2] = src[i] }
            case (2, _):
                for i in 0 ..< count {
                    let v = compositeOnWhite(src[2 * i], src[2 * i], src[2 * i], alpha: src[2 * i + 1])
                    out[3 * i] = v.0; out[3 * i + 1] = v.1; out[3 * i + 2] = v.2
                }
            case (3, _):
                out.baseAddress!.update(from: src, count: count * 3)
            case (4, false):
                for i in 0 ..< count {
                    let p = src + 4 * i
                    let v = compositeOnWhite(p[0], p[1], p[2], alpha: p[3])
                    out[3 * i] = v.0; out[3 * i + 1] = v.1; out[3 * i + 2] = v.2
                }
            default:  // CMYK
                for i in 0 ..< count {
                    let p = src + 4 * i
                    let nk = Int(p[3])  // 255 - k, where Pillow's k = 255 - raw
                    for c in 0 ..< 3 {
                        let m = (255 - Int(p[c])) * nk + 128
                        out[3 * i + c] = UInt8(clamping: nk - (((m >> 8) + m) >> 8))
                    }
                }
            }
            filled = count * 3
        }
    }

    /// Pillow's `alpha_composite` of (r, g, b, alpha) over opaque white (AlphaComposite.c, 7 extra bits).
    @inline(__always)
    static func compositeOnWhite(_ r: UInt8, _ g: UInt8, _ b: UInt8, alpha: UInt8) -> (UInt8, UInt8, UInt8) {
        if alpha == 0 { return (255, 255, 255) }
        let a = UInt32(alpha)
        let blend = 255 * (255 - a)
        let outa255 = a * 255 + blend
        let coef1 = a * 255 * 255 * 128 / outa255
        let coef2 = 255 * 128 - coef1
        @inline(__always) func channel(_ s: UInt8) -> UInt8 {
            let t = UInt32(s) * coef1 + 255 * coef2 + (0x80 << 7)
            return UInt8(truncatingIfNeeded: (((t >> 8) + t) >> 8) >> 7)
        }
        return (channel(r), channel(g), channel(b))
    }

    /// Applies an EXIF orientation (Pillow's `ImageOps.exif_transpose`): 2 mirror, 3 rotate 180, 4 flip,
    /// 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
    static func orient(_ p: [UInt8], width w: Int, height h: Int, orientation: Int) -> (Int, Int, [UInt8]) {
        guard (2 ... 8).contains(orientation) else { return (w, h, p) }
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        let out = [UInt8](unsafeUninitializedCapacity: p.count) { o, filled in
            p.withUnsafeBufferPointer { src in
                for y in 0 ..< oh {
                    for x in 0 ..< ow {
                        let sx: Int, sy: Int
                        switch orientation {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        o[d] = src[s]; o[d + 1] = src[s + 1]; o[d + 2] = src[s + 2]
                    }
                }
            }
            filled = p.count
        }
        return (ow, oh, out)
    }
}

/// 64-bit FNV-1a.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }

    public mutating func add(_ x: UInt64) {
        withUnsafeBytes(of: x.littleEndian) { add($0) }
    }
}
