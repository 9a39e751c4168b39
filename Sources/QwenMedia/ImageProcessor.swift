import QwenFormats

/// Settings of the Qwen2-VL image processor (`preprocessor_config.json`, or a projector GGUF's metadata).
public struct ImageProcessorSettings: Sendable, Equatable {
    public var patchSize = 14
    public var mergeSize = 2
    public var temporalPatchSize = 2
    /// Bounds on the resized image's pixel count (`min_pixels` / `max_pixels`, transformers 5: `size.shortest_edge`
    /// / `size.longest_edge`); the reference defaults are 56·56 and 28·28·1280.
    public var minPixels = 56 * 56
    public var maxPixels = 28 * 28 * 1280
    /// Per-channel mean and standard deviation (CLIP's unless configured), as the JSON's decimal values.
    public var mean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public var std: [Double] = [0.26862954, 0.26130258, 0.27577711]
    public var rescaleFactor: Double = 1.0 / 255.0
    /// When positive, images are resized to this square without keeping the aspect ratio (the first-generation
    /// Qwen-VL's 448 × 448) instead of smart_resize.
    public var fixedSize = 0

    public init() {}

    public func validate() throws {
        guard patchSize > 0, patchSize <= 1024, mergeSize > 0, mergeSize <= 16, temporalPatchSize > 0, temporalPatchSize <= 16 else {
            throw QwenError.format("invalid image processor patch settings (\(patchSize), \(mergeSize), \(temporalPatchSize))")
        }
        guard fixedSize >= 0, fixedSize <= 1 << 14, fixedSize % (patchSize * mergeSize) == 0 else {
            throw QwenError.format("fixed image size \(fixedSize) is not a multiple of \(patchSize * mergeSize) up to 16384")
        }
        guard minPixels > 0, maxPixels >= minPixels, maxPixels <= 1 << 34 else {
            throw QwenError.invalidArgument("invalid pixel bounds: min_pixels \(minPixels), max_pixels \(maxPixels)")
        }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw QwenError.format("image mean/std must have 3 finite values (std non-zero)")
        }
    }
}

/// An image as the vision tower takes it: `patches` rows of channels × temporal × patch × patch floats, in 2×2
/// merge groups, and the (temporal, height, width) patch grid (`image_grid_thw`).
public struct ProcessedImage: Sendable {
    public let pixels: [Float]
    public let grid: (t: Int, h: Int, w: Int)
    public var patches: Int { grid.t * grid.h * grid.w }
    public var rowSize: Int { pixels.count / max(1, patches) }
}

/// transformers' `Qwen2VLImageProcessor` (the Pillow backend it uses without torchvision): smart_resize, Pillow
/// bicubic resampling, rescale, normalize, temporal repetition and patch ordering, with the reference's float
/// arithmetic (rescale in double then float, normalize in float).
public enum ImageProcessor {
    /// The size the image is resized to: both sides multiples of `factor`, the aspect ratio kept as well as
    /// possible, the pixel count within [minPixels, maxPixels]. Python's `round` (half to even) as the reference.
    public static func smartResize(height: Int, width: Int, factor: Int, minPixels: Int, maxPixels: Int) throws -> (height: Int, width: Int) {
        guard height > 0, width > 0 else { throw QwenError.invalidArgument("image size \(width)x\(height) is invalid") }
        let ratio = Double(max(height, width)) / Double(min(height, width))
        guard ratio <= 200 else {
            throw QwenError.invalidArgument("absolute aspect ratio must be smaller than 200, got \(ratio)")
        }
        let f = Double(factor)
        var h = Int((Double(height) / f).rounded(.toNearestOrEven)) * factor
        var w = Int((Double(width) / f).rounded(.toNearestOrEven)) * factor
        if h * w > maxPixels {
            let beta = (Double(height * width) / Double(maxPixels)).squareRoot()
            h = max(factor, Int((Double(height) / beta / f).rounded(.down)) * factor)
            w = max(factor, Int((Double(width) / beta / f).rounded(.down)) * factor)
        } else if h * w < minPixels {
            let beta = (Double(minPixels) / Double(height * width)).squareRoot()
            h = Int((Double(height) * beta / f).rounded(.up)) * factor
            w = Int((Double(width) * beta / f).rounded(.up)) * factor
        }
        return (h, w)
    }

    /// The resized RGB image (before normalization).
    public static func resized(_ image: RGBImage, settings s: ImageProcessorSettings) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        try s.validate()
        let (h, w) = s.fixedSize > 0 ? (s.fixedSize, s.fixedSize)
            : try smartResize(height: image.height, width: image.width, factor: s.patchSize * s.mergeSize,
                              minPixels: s.minPixels, maxPixels: s.maxPixels)
        // the resampler's intermediate rows and output, the normalized patches (F32, two frames) and the encoder's
        // per-patch buffers: ~64 bytes per output pixel; the host may have raised the pixel bounds far
        let (bytes, overflow) = h.multipliedReportingOverflow(by: w)
        try QwenError.requireMemory(overflow || bytes > Int.max / 64 ? -1 : bytes * 64 + image.width * h * 3,
                                    for: "an image resized to \(w) x \(h) pixels")
        return (w, h, BicubicResampler.resize(image.pixels, width: image.width, height: image.height, toWidth: w, height: h))
    }

    public static func process(_ image: RGBImage, settings s: ImageProcessorSettings = ImageProcessorSettings()) throws -> ProcessedImage {
        let (w, h, rgb) = try resized(image, settings: s)
        let p = s.patchSize, m = s.mergeSize, t = s.temporalPatchSize
        let gh = h / p, gw = w / p
        let rowSize = 3 * t * p * p
        // float32 values per byte value and channel: (float32(v · rescale as double) − mean) / std in float32
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0 ..< 3 {
            let mean = Float(s.mean[c]), std = Float(s.std[c])
            for v in 0 ..< 256 { table[c * 256 + v] = (Float(Double(v) * s.rescaleFactor) - mean) / std }
        }
        let pixels = [Float](unsafeUninitializedCapacity: gh * gw * rowSize) { out, filled in
            rgb.withUnsafeBufferPointer { src in
                table.withUnsafeBufferPointer { lut in
                    var row = 0
                    for bh in 0 ..< gh / m {
                        for bw in 0 ..< gw / m {
                            for i in 0 ..< m {
                                for j in 0 ..< m {
                                    let py = (bh * m + i) * p, px = (bw * m + j) * p
                                    let o = out.baseAddress! + row * rowSize
                                    for c in 0 ..< 3 {
                                        for ti in 0 ..< t {
                                            let base = o + (c * t + ti) * p * p
                                            for y in 0 ..< p {
                                                let line = src.baseAddress! + ((py + y) * w + px) * 3 + c
                                                for x in 0 ..< p { base[y * p + x] = lut[c * 256 + Int(line[x * 3])] }
                                            }
                                        }
                                    }
                                    row += 1
                                }
                            }
                        }
                    }
                }
            }
            filled = gh * gw * rowSize
        }
        return ProcessedImage(pixels: pixels, grid: (1, gh, gw))
    }
}
