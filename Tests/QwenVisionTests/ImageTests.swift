import QwenFormats
import QwenMedia
import QwenTestSupport
import Testing

/// Decoding and preprocessing against transformers' Qwen2VLImageProcessor (Pillow backend, Pillow 13) on the images
/// of Tests/Fixtures/vision/images (scripts/fixtures/make_vision_fixtures.py).
@Suite struct ImageTests {
    static let meta = try! TestSupport.readJSON(TestSupport.fixture("vision/refs/preprocess.json"))
    static var imageNames: [String] { meta["images"]!.object!.map(\.key) }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func fnv(_ bytes: [UInt8]) -> String {
        var h = FNV1a()
        bytes.withUnsafeBytes { h.add($0) }
        return hex(h.value)
    }

    static func load(_ name: String) throws -> RGBImage { try RGBImage.load(path: TestSupport.fixture("vision/images/" + name)) }

    /// The RGB image the processor resizes: same size and the same bytes as Pillow's (alpha composited onto white,
    /// palette/tRNS, 16-bit high bytes, CMYK, EXIF orientation, progressive and grayscale JPEG).
    @Test(arguments: imageNames) func decodesLikePillow(_ name: String) throws {
        let ref = Self.meta["images"]![name]!
        let img = try Self.load(name)
        let size = ref["size"]!.array!.map { $0.int! }
        #expect([img.width, img.height] == size)
        #expect(Self.fnv(img.pixels) == ref["rgb_fnv1a64"]!.string!, "\(name): decoded pixels differ from Pillow's")
        #expect(img.pixels.reduce(0) { $0 + Int($1) } == ref["rgb_sum"]!.int!)
    }

    /// Pillow's bicubic resize, byte for byte, to the smart_resize size.
    @Test(arguments: imageNames) func resizesLikePillow(_ name: String) throws {
        let ref = Self.meta["images"]![name]!
        let (w, h, bytes) = try ImageProcessor.resized(try Self.load(name), settings: ImageProcessorSettings())
        #expect([w, h] == ref["resized"]!.array!.map { $0.int! })
        #expect(Self.fnv(bytes) == ref["resized_fnv1a64"]!.string!, "\(name): resized pixels differ from Pillow's")
    }

    /// pixel_values and image_grid_thw within 1e-4 (in practice identical).
    @Test(arguments: imageNames) func pixelValuesMatchTheProcessor(_ name: String) throws {
        let ref = Self.meta["images"]![name]!
        let out = try ImageProcessor.process(try Self.load(name))
        let grid = ref["grid_thw"]!.array!.map { $0.int! }
        #expect([out.grid.t, out.grid.h, out.grid.w] == grid)
        #expect([out.patches, out.rowSize] == ref["pixel_values_shape"]!.array!.map { $0.int! })
        var worst: Float = 0
        if let file = ref["pixel_values_file"]?.string {
            let values = try TestSupport.readFloats(TestSupport.fixture("vision/refs/" + file))
            #expect(values.count == out.pixels.count)
            for (a, b) in zip(values, out.pixels) { worst = max(worst, abs(a - b)) }
        } else {
            let samples = ref["samples"]!
            for (i, v) in zip(samples["index"]!.array!, samples["value"]!.array!) {
                worst = max(worst, abs(out.pixels[i.int!] - Float(v.double!)))
            }
        }
        #expect(worst <= 1e-4, "\(name): max |Δ| \(worst)")
        let sum = out.pixels.reduce(0.0) { $0 + Double($1) }, absSum = out.pixels.reduce(0.0) { $0 + abs(Double($1)) }
        #expect(abs(sum - ref["sum"]!.double!) <= 1e-6 * absSum)
        #expect(abs(absSum - ref["abs_sum"]!.double!) <= 1e-6 * absSum)
    }

    /// Per-image pixel bounds (the host's override, the model's preprocessor_config).
    @Test func pixelBoundsOverride() throws {
        for c in Self.meta["overrides"]!.array! {
            var s = ImageProcessorSettings()
            s.minPixels = c["min_pixels"]!.int!
            s.maxPixels = c["max_pixels"]!.int!
            let out = try ImageProcessor.process(try Self.load(c["image"]!.string!), settings: s)
            #expect([out.grid.t, out.grid.h, out.grid.w] == c["grid_thw"]!.array!.map { $0.int! })
            let sum = out.pixels.reduce(0.0) { $0 + Double($1) }, absSum = out.pixels.reduce(0.0) { $0 + abs(Double($1)) }
            #expect(abs(sum - c["sum"]!.double!) <= 1e-6 * absSum)
            #expect(abs(absSum - c["abs_sum"]!.double!) <= 1e-6 * absSum)
        }
    }

    /// smart_resize, including Python's round-half-to-even and the aspect-ratio error.
    @Test func smartResizeMatchesTheReference() throws {
        for c in Self.meta["smart_resize"]!.array! {
            let h = c["height"]!.int!, w = c["width"]!.int!
            if let resized = c["resized"]?.array?.map({ $0.int! }) {
                let r = try ImageProcessor.smartResize(height: h, width: w, factor: 28, minPixels: 3136, maxPixels: 1_003_520)
                #expect([r.height, r.width] == resized, "\(h)x\(w)")
            } else {
                #expect(throws: QwenError.self) {
                    try ImageProcessor.smartResize(height: h, width: w, factor: 28, minPixels: 3136, maxPixels: 1_003_520)
                }
            }
        }
    }

    /// Corrupt, truncated, empty and oversized files are errors, never crashes; the pixel limit holds before
    /// anything is allocated (a 100000 x 100000 header).
    @Test func brokenImagesAreErrors() throws {
        for (name, status) in [("bad_truncated.png", QwenStatus.format), ("bad_truncated.jpg", .format), ("bad_garbage.png", .format),
                               ("bad_garbage.jpg", .format), ("bad_huge.png", .unsupported), ("bad_empty.png", .format)] {
            do {
                _ = try Self.load(name)
                Issue.record("\(name) decoded")
            } catch let e as QwenError {
                #expect(e.status == status, "\(name): \(e.message)")
            }
        }
        var options = RGBImage.DecodeOptions()
        options.maxPixels = 333 * 215 - 1
        #expect(throws: QwenError.self) { try RGBImage.load(path: TestSupport.fixture("vision/images/rgb_333x215.png"), options: options) }
        options.maxPixels = 640 * 427 - 1
        #expect(throws: QwenError.self) { try RGBImage.load(path: TestSupport.fixture("vision/images/photo_640x427.jpg"), options: options) }
        #expect(throws: QwenError.self) { try RGBImage.load(path: TestSupport.fixture("vision/images/missing.png")) }
        // every prefix of a small PNG and JPEG
        for name in ["gray_28x28.png", "gray_123x77.jpg"] {
            let file = try FileBytes(path: TestSupport.fixture("vision/images/" + name), map: false)
            for n in stride(from: 0, to: file.count, by: max(1, file.count / 97)) {
                _ = try? RGBImage.decode(UnsafeRawBufferPointer(rebasing: file.buffer[0 ..< n]))
            }
        }
        // host pixels: sizes and lengths are checked
        let rgb = [UInt8](repeating: 7, count: 12)
        try rgb.withUnsafeBytes { b in
            let k1 = try RGBImage(rgb: b, width: 2, height: 2).key, k2 = try RGBImage(rgb: b, width: 2, height: 2).key
            #expect(k1 == k2)
            #expect(throws: QwenError.self) { try RGBImage(rgb: b, width: 3, height: 2) }
            #expect(throws: QwenError.self) { try RGBImage(rgb: b, width: 0, height: 2) }
            #expect(throws: QwenError.self) { try RGBImage(rgb: b, width: 2, height: 2, maxPixels: 3) }
        }
    }

    /// Orientation can be left as stored.
    @Test func orientationCanBeIgnored() throws {
        var options = RGBImage.DecodeOptions()
        options.applyOrientation = false
        let raw = try RGBImage.load(path: TestSupport.fixture("vision/images/exif6_200x120.jpg"), options: options)
        let turned = try Self.load("exif6_200x120.jpg")
        #expect((raw.width, raw.height) == (200, 120))
        #expect((turned.width, turned.height) == (120, 200))
        // rotated 90° clockwise: the turned image's top-right pixel is the raw image's top-left
        #expect(Array(turned.pixels[(turned.width - 1) * 3 ..< turned.width * 3]) == Array(raw.pixels[0 ..< 3]))
    }
}
