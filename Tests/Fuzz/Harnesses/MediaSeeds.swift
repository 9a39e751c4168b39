// Seed corpora of the media harnesses (Tests/Fuzz/corpus/image, Tests/Fuzz/corpus/audio), written with the other
// seeds by `QWEN_WRITE_FUZZ_SEEDS=1 swift test --filter writeFuzzSeeds`. Tiny on purpose: a fuzzer mutates small
// files faster. Images are a 20x14 downscale of Tests/Fixtures/vision/images/photo_640x427.jpg in every PNG colour
// type and depth (a minimal encoder below: stored deflate, all five row filters, Adam7) and in JPEG variants (written
// by libjpeg-turbo); audio is 80 ms of Tests/Fixtures/audio/inputs/speech.wav written by libsndfile in several
// containers and codecs. Small fixture PNGs (Pillow's compression) are copied as they are.
import CJPEG
import CSndfile
import QwenFormats
import QwenMedia
#if canImport(Glibc)
import Glibc
#endif

extension FuzzSeeds {
    public static func writeMediaCorpus() throws {
        func put(_ harness: Harness, _ name: String, _ bytes: [UInt8]) throws {
            let folder = FuzzPaths.corpus + "/" + harness.rawValue
            mkdir(folder, 0o755)
            try FuzzPaths.write(bytes, to: folder + "/" + name)
        }

        // image: the source, its gray and alpha variants
        let photo = try RGBImage.load(path: FuzzPaths.fixture("vision/images/photo_640x427.jpg"))
        let (w, h) = (20, 14)
        let rgb = BicubicResampler.resize(photo.pixels, width: photo.width, height: photo.height, toWidth: w, height: h)
        var gray: [UInt8] = [], alpha: [UInt8] = []
        for i in 0 ..< w * h {
            let luma: Int = 299 * Int(rgb[3 * i]) + 587 * Int(rgb[3 * i + 1]) + 114 * Int(rgb[3 * i + 2])
            gray.append(UInt8(luma / 1000))
            alpha.append(UInt8(i % w * 255 / (w - 1)))
        }
        func interleave(_ a: [UInt8], _ aChannels: Int, _ b: [UInt8]) -> [UInt16] {
            var out: [UInt16] = []
            for i in 0 ..< w * h {
                for c in 0 ..< aChannels { out.append(UInt16(a[i * aChannels + c])) }
                out.append(UInt16(b[i]))
            }
            return out
        }
        let rgb8 = rgb.map(UInt16.init), gray8 = gray.map(UInt16.init)
        let wide: (UInt16) -> UInt16 = { $0 * 257 ^ 0x5A }  // 16-bit samples whose low byte is not a copy of the high
        let exif: [UInt8] = [0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
        // a 16-colour palette (the top bits of each channel) and the index of every pixel
        var indices: [UInt16] = [], palette: [UInt8] = []
        for i in 0 ..< w * h {
            let r: UInt16 = UInt16(rgb[3 * i] >> 6), g: UInt16 = UInt16(rgb[3 * i + 1] >> 6)
            indices.append(r << 2 | g)
        }
        for k in 0 ..< 16 { palette += [UInt8((k >> 2) * 85), UInt8((k & 3) * 85), 128] }
        let pngs: [(String, [UInt8])] = [
            ("rgb8.png", png(w, h, color: 2, depth: 8, rgb8)),
            ("rgb8-adam7.png", png(w, h, color: 2, depth: 8, rgb8, interlaced: true)),
            ("rgb16.png", png(w, h, color: 2, depth: 16, rgb8.map(wide))),
            ("rgba8.png", png(w, h, color: 6, depth: 8, interleave(rgb, 3, alpha))),
            ("rgba16-adam7.png", png(w, h, color: 6, depth: 16, interleave(rgb, 3, alpha).map(wide), interlaced: true)),
            ("gray8.png", png(w, h, color: 0, depth: 8, gray8)),
            ("gray16.png", png(w, h, color: 0, depth: 16, gray8.map(wide))),
            ("gray1-adam7.png", png(w, h, color: 0, depth: 1, gray8.map { $0 >> 7 }, interlaced: true)),
            ("gray4-trns.png", png(w, h, color: 0, depth: 4, gray8.map { $0 >> 4 }, trns: [0, 7])),
            ("graya8.png", png(w, h, color: 4, depth: 8, interleave(gray, 1, alpha))),
            ("palette8-trns.png", png(w, h, color: 3, depth: 8, indices, palette: palette, trns: [0, 64, 128, 255, 32])),
            ("palette4.png", png(w, h, color: 3, depth: 4, indices, palette: palette)),
            ("palette2-adam7.png", png(w, h, color: 3, depth: 2, indices.map { $0 & 3 }, palette: Array(palette.prefix(12)), interlaced: true)),
            ("rgb8-exif6.png", png(w, h, color: 2, depth: 8, rgb8, exif: exif)),
        ]
        for (name, bytes) in pngs { try put(.image, name, bytes) }
        for name in ["gray_28x28.png", "graya_61x47.png", "palette_trns_97x53.png", "interlaced_77x66.png", "exif3_64x48.png"] {
            try put(.image, "fixture-" + name, readBytes(FuzzPaths.fixture("vision/images/" + name)))
        }
        var cmyk: [UInt8] = []
        for i in 0 ..< w * h { cmyk += [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255 - gray[i]] }
        let jpegs: [(String, [UInt8])] = [
            ("baseline-420.jpg", jpeg(rgb, w, h, JCS_RGB)),
            ("baseline-444-restart.jpg", jpeg(rgb, w, h, JCS_RGB, sampling444: true, restart: 1, optimize: true)),
            ("progressive.jpg", jpeg(rgb, w, h, JCS_RGB, progressive: true)),
            ("gray.jpg", jpeg(gray, w, h, JCS_GRAYSCALE)),
            ("gray-progressive.jpg", jpeg(gray, w, h, JCS_GRAYSCALE, progressive: true)),
            ("arithmetic.jpg", jpeg(rgb, w, h, JCS_RGB, arithmetic: true)),
            ("cmyk.jpg", jpeg(cmyk, w, h, JCS_CMYK)),
            ("exif6.jpg", jpeg(rgb, w, h, JCS_RGB, exif: Array("Exif\0\0".utf8) + exif)),
        ]
        for (name, bytes) in jpegs { try put(.image, name, bytes) }

        // audio: 80 ms of speech (from 0.5 s on) and a second channel of it delayed by 1 ms
        let speech = try AudioClip(path: FuzzPaths.fixture("audio/inputs/speech.wav")).samples
        let mono = Array(speech[8000 ..< 9280])
        var stereo: [Float] = []
        for i in 0 ..< mono.count { stereo += [mono[i], i >= 16 ? mono[i - 16] : 0] }
        let formats: [(String, Int32, Int, Int)] = [
            ("pcm16.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16), 1, 16000),
            ("pcm24-stereo.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24), 2, 22050),
            ("float.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT), 1, 8000),
            ("u8.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_U8), 1, 11025),
            ("ulaw.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_ULAW), 1, 8000),
            ("ima-adpcm.wav", Int32(SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM), 1, 16000),
            ("pcm16.aiff", Int32(SF_FORMAT_AIFF | SF_FORMAT_PCM_16), 1, 16000),
            ("pcm16.flac", Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16), 1, 16000),
            ("pcm24-stereo.flac", Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_24), 2, 44100),
            ("vorbis.ogg", Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS), 1, 16000),
            ("opus.ogg", Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS), 1, 48000),
            ("layer3.mp3", Int32(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III), 1, 16000),
        ]
        for (name, format, channels, rate) in formats {
            guard let bytes = try soundFile(channels == 1 ? mono : stereo, channels: channels, rate: rate, format: format) else {
                continue  // a codec this libsndfile cannot write
            }
            try put(.audio, name, bytes)
        }
        // raw little-endian PCM, as the raw readers of the harness take it
        var s16: [UInt8] = [], f32: [UInt8] = []
        for s in mono {
            let v = Int16(max(-32768, min(32767, s * 32768)))
            withUnsafeBytes(of: v.littleEndian) { s16 += $0 }
        }
        for s in mono.prefix(640) { withUnsafeBytes(of: s.bitPattern.littleEndian) { f32 += $0 } }
        try put(.audio, "raw-s16le", s16)
        try put(.audio, "raw-f32le", f32)
    }

    // MARK: PNG

    /// A PNG of `samples` (channels per pixel given by the colour type, each below 2^depth), rows filtered with the
    /// five filters in turn, image data in stored deflate blocks split over IDAT chunks of at most 512 bytes.
    static func png(_ width: Int, _ height: Int, color: UInt8, depth: Int, _ samples: [UInt16], palette: [UInt8]? = nil,
                    trns: [UInt8]? = nil, interlaced: Bool = false, exif: [UInt8]? = nil) -> [UInt8] {
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(color)]!
        let bitsPerPixel = channels * depth, bpp = max(1, bitsPerPixel / 8)
        // Adam7 passes (x start, y start, x step, y step), or the whole image
        let passes = interlaced ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)] : [(0, 0, 1, 1)]
        var raw: [UInt8] = []
        var rowIndex = 0
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx)), ys = Array(stride(from: y0, to: height, by: dy))
            guard !xs.isEmpty, !ys.isEmpty else { continue }
            var previous = [UInt8](repeating: 0, count: (xs.count * bitsPerPixel + 7) / 8)
            for y in ys {
                var row = [UInt8](repeating: 0, count: previous.count)
                var bit = 0
                for x in xs {
                    for c in 0 ..< channels {
                        let v = Int(samples[(y * width + x) * channels + c])
                        if depth == 16 {
                            row[bit / 8] = UInt8(v >> 8)
                            row[bit / 8 + 1] = UInt8(v & 255)
                        } else {
                            let shift: Int = 8 - depth - bit % 8
                            row[bit / 8] |= UInt8((v << shift) & 255)
                        }
                        bit += depth
                    }
                }
                let filter = rowIndex % 5
                rowIndex += 1
                raw.append(UInt8(filter))
                for i in 0 ..< row.count {
                    let a: Int = i >= bpp ? Int(row[i - bpp]) : 0, b = Int(previous[i]), c: Int = i >= bpp ? Int(previous[i - bpp]) : 0
                    let predictor: Int
                    switch filter {
                    case 1: predictor = a
                    case 2: predictor = b
                    case 3: predictor = (a + b) / 2
                    case 4:
                        let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                    default: predictor = 0
                    }
                    raw.append(UInt8(truncatingIfNeeded: Int(row[i]) - predictor))
                }
                previous = row
            }
        }
        // zlib: header, stored blocks, Adler-32
        var zlib: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let n = min(65535, raw.count - start)
            let final: UInt8 = start + n == raw.count ? 1 : 0, length = UInt16(n), complement = ~UInt16(n)
            zlib += [final, UInt8(length & 255), UInt8(length >> 8), UInt8(complement & 255), UInt8(complement >> 8)]
            zlib += raw[start ..< start + n]
            start += n
        } while start < raw.count
        var s1: UInt32 = 1, s2: UInt32 = 0
        for b in raw { s1 = (s1 + UInt32(b)) % 65521; s2 = (s2 + s1) % 65521 }
        zlib += bigEndian(s2 << 16 | s1)

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            let body: [UInt8] = Array(type.utf8) + data
            out += bigEndian(UInt32(data.count))
            out += body
            out += bigEndian(crc32(body))
        }
        var header = bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [UInt8(depth), color, 0, 0, interlaced ? 1 : 0]
        chunk("IHDR", header)
        if let palette { chunk("PLTE", palette) }
        if let trns { chunk("tRNS", trns) }
        if let exif { chunk("eXIf", exif) }
        for i in stride(from: 0, to: zlib.count, by: 512) { chunk("IDAT", Array(zlib[i ..< min(zlib.count, i + 512)])) }
        chunk("IEND", [])
        return out
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    /// CRC-32 (ISO-HDLC, reflected 0xEDB88320), as PNG chunks use it.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0 ..< 8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return ~crc
    }

    // MARK: JPEG

    /// A JPEG written by libjpeg-turbo (quality 75; 4:2:0 unless `sampling444`).
    static func jpeg(_ pixels: [UInt8], _ width: Int, _ height: Int, _ space: J_COLOR_SPACE, progressive: Bool = false,
                     arithmetic: Bool = false, sampling444: Bool = false, restart: UInt32 = 0, optimize: Bool = false,
                     exif: [UInt8]? = nil) -> [UInt8] {
        let components = space == JCS_GRAYSCALE ? 1 : space == JCS_CMYK ? 4 : 3
        // the compressor keeps pointers to the error manager and the output buffer: heap, not Swift locals
        let cinfo = UnsafeMutablePointer<jpeg_compress_struct>.allocate(capacity: 1)
        let errors = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>.allocate(capacity: 1)
        let size = UnsafeMutablePointer<UInt>.allocate(capacity: 1)
        defer { cinfo.deallocate(); errors.deallocate(); buffer.deallocate(); size.deallocate() }
        buffer.pointee = nil
        size.pointee = 0
        cinfo.pointee = jpeg_compress_struct()
        cinfo.pointee.err = jpeg_std_error(errors)  // its error_exit ends the process: fine for fixed, valid seeds
        jpeg_CreateCompress(cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
        jpeg_mem_dest(cinfo, buffer, size)
        cinfo.pointee.image_width = JDIMENSION(width)
        cinfo.pointee.image_height = JDIMENSION(height)
        cinfo.pointee.input_components = Int32(components)
        cinfo.pointee.in_color_space = space
        jpeg_set_defaults(cinfo)
        jpeg_set_quality(cinfo, 75, 1)
        if sampling444 { cinfo.pointee.comp_info[0].h_samp_factor = 1; cinfo.pointee.comp_info[0].v_samp_factor = 1 }
        if progressive { jpeg_simple_progression(cinfo) }
        cinfo.pointee.arith_code = arithmetic ? 1 : 0
        cinfo.pointee.optimize_coding = optimize ? 1 : 0
        cinfo.pointee.restart_interval = restart
        jpeg_start_compress(cinfo, 1)
        if let exif { jpeg_write_marker(cinfo, JPEG_APP0 + 1, exif, UInt32(exif.count)) }
        var copy = pixels
        copy.withUnsafeMutableBufferPointer { p in
            for y in 0 ..< height {
                var row: JSAMPROW? = p.baseAddress! + y * width * components
                _ = jpeg_write_scanlines(cinfo, &row, 1)
            }
        }
        jpeg_finish_compress(cinfo)
        let out = Array(UnsafeBufferPointer(start: buffer.pointee, count: Int(size.pointee)))
        free(buffer.pointee)
        jpeg_destroy_compress(cinfo)
        return out
    }

    // MARK: Audio

    /// The samples written by libsndfile in `format`; nil when this libsndfile cannot write it.
    static func soundFile(_ samples: [Float], channels: Int, rate: Int, format: Int32) throws -> [UInt8]? {
        var info = SF_INFO()
        info.samplerate = Int32(rate)
        info.channels = Int32(channels)
        info.format = format
        guard sf_format_check(&info) != 0 else { return nil }
        let path = try FuzzPaths.scratchFolder() + "/seed.audio"
        unlink(path)
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else { return nil }
        sf_command(file, Int32(SFC_SET_ADD_PEAK_CHUNK), nil, 0)  // SF_FALSE: the PEAK chunk holds the time of writing
        _ = samples.withUnsafeBufferPointer { sf_writef_float(file, $0.baseAddress, sf_count_t(samples.count / channels)) }
        sf_close(file)
        var bytes = try readBytes(path)
        if format & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_OGG) { fixOggSerial(&bytes) }
        return bytes
    }

    /// libsndfile gives each Ogg stream a random serial number: set it to 1 (and the page checksums) so the seeds
    /// are the same every time they are written.
    static func fixOggSerial(_ bytes: inout [UInt8]) {
        var at = 0
        while at + 27 <= bytes.count, bytes[at ..< at + 4].elementsEqual("OggS".utf8) {
            let segments = Int(bytes[at + 26])
            guard at + 27 + segments <= bytes.count else { return }
            let length = 27 + segments + bytes[at + 27 ..< at + 27 + segments].reduce(0) { $0 + Int($1) }
            guard at + length <= bytes.count else { return }
            bytes.replaceSubrange(at + 14 ..< at + 18, with: [1, 0, 0, 0])
            bytes.replaceSubrange(at + 22 ..< at + 26, with: [0, 0, 0, 0])
            var crc: UInt32 = 0  // Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, no final inversion
            for b in bytes[at ..< at + length] {
                crc ^= UInt32(b) << 24
                for _ in 0 ..< 8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
            }
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(at + 22 ..< at + 26, with: $0) }
            at += length
        }
    }
}
