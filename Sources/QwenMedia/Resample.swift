/// Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, reproduced exactly (Pillow 13, libImaging/Resample.c):
/// a separable convolution with the Keys cubic (a = -0.5) widened by the scale when shrinking, coefficients
/// normalized to sum 1 and turned into 22-bit fixed point, one pass per axis with the intermediate rounded to
/// 8 bits. Pillow 13 runs the vertical pass first when the height shrinks by more than twice what the width does
/// (`(inH - outH) > 0 && (inH - outH) > (inW - outW) * 2`), else the horizontal pass first; each pass only when
/// that side changes size. transformers' Qwen2VLImageProcessor resizes with exactly this (the PIL backend).
public enum BicubicResampler {
    static let precisionBits: Int32 = 32 - 8 - 2

    /// Per output position: first input index, number of taps, and `taps` fixed-point weights.
    struct Coefficients {
        let taps: Int
        let first: [Int]
        let count: [Int]
        let weights: [Int32]
    }

    @inline(__always) static func cubic(_ x0: Double) -> Double {
        let a = -0.5
        let x = x0 < 0 ? -x0 : x0
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        // box = (0, inSize) as floats; (double)(in1 - in0) / outSize
        let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 2.0 * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        let inverse = 1.0 / filterScale
        var first = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        for xx in 0 ..< outSize {
            let center = 0 + (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5)  // C's (int) truncates toward zero
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0 ..< xmax {
                let w = cubic((Double(x + xmin) - center + 0.5) * inverse)
                k[x] = w
                ww += w
            }
            if ww != 0 { for x in 0 ..< xmax { k[x] /= ww } }
            for x in 0 ..< xmax {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * taps + x] = k[x] < 0 ? Int32(-0.5 + v) : Int32(0.5 + v)
            }
            first[xx] = xmin
            count[xx] = max(0, xmax)
        }
        return Coefficients(taps: taps, first: first, count: count, weights: weights)
    }

    @inline(__always) static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> precisionBits
        return s < 0 ? 0 : s > 255 ? 255 : UInt8(s)
    }

    /// Resizes interleaved RGB (`width × height × 3` bytes) to `outWidth × outHeight`.
    public static func resize(_ pixels: [UInt8], width: Int, height: Int, toWidth outWidth: Int, height outHeight: Int) -> [UInt8] {
        precondition(pixels.count == width * height * 3 && outWidth > 0 && outHeight > 0)
        let needHorizontal = outWidth != width, needVertical = outHeight != height
        if !needHorizontal && !needVertical { return pixels }
        let horizontalFirst = !((height - outHeight) > 0 && (height - outHeight) > (width - outWidth) * 2)
        if horizontalFirst {
            let v = coefficients(inSize: height, outSize: outHeight)
            var image = pixels, rowOffset = 0, rows = height
            if needHorizontal {
                // only the input rows the vertical pass reads
                let firstRow = needVertical ? v.first[0] : 0
                let lastRow = needVertical ? v.first[outHeight - 1] + v.count[outHeight - 1] : height
                image = horizontal(pixels, width: width, rows: firstRow ..< lastRow, outWidth: outWidth)
                rowOffset = firstRow
                rows = lastRow - firstRow
            }
            guard needVertical else { return image }
            return vertical(image, width: needHorizontal ? outWidth : width, height: rows, coefficients: v,
                            rowOffset: rowOffset, outHeight: outHeight)
        } else {
            var image = pixels
            if needVertical {
                image = vertical(pixels, width: width, height: height, coefficients: coefficients(inSize: height, outSize: outHeight),
                                 rowOffset: 0, outHeight: outHeight)
            }
            guard needHorizontal else { return image }
            return horizontal(image, width: width, rows: 0 ..< (needVertical ? outHeight : height), outWidth: outWidth)
        }
    }

    static func horizontal(_ src: [UInt8], width: Int, rows: Range<Int>, outWidth: Int) -> [UInt8] {
        let c = coefficients(inSize: width, outSize: outWidth)
        let half: Int32 = 1 << (precisionBits - 1)
        return [UInt8](unsafeUninitializedCapacity: rows.count * outWidth * 3) { out, filled in
            src.withUnsafeBufferPointer { s in
                c.weights.withUnsafeBufferPointer { k in
                    for (oy, y) in rows.enumerated() {
                        let line = s.baseAddress! + y * width * 3, o = out.baseAddress! + oy * outWidth * 3
                        for xx in 0 ..< outWidth {
                            let x0 = c.first[xx], n = c.count[xx], kk = k.baseAddress! + xx * c.taps
                            var r = half, g = half, b = half
                            var p = line + x0 * 3
                            for x in 0 ..< n {
                                let w = kk[x]
                                r &+= Int32(p[0]) &* w
                                g &+= Int32(p[1]) &* w
                                b &+= Int32(p[2]) &* w
                                p += 3
                            }
                            o[xx * 3] = clip8(r); o[xx * 3 + 1] = clip8(g); o[xx * 3 + 2] = clip8(b)
                        }
                    }
                }
            }
            filled = rows.count * outWidth * 3
        }
    }

    /// `src` holds input rows rowOffset..<rowOffset+height (the coefficients index the full input).
    static func vertical(_ src: [UInt8], width: Int, height: Int, coefficients c: Coefficients, rowOffset: Int, outHeight: Int) -> [UInt8] {
        let half: Int32 = 1 << (precisionBits - 1)
        let stride = width * 3
        return [UInt8](unsafeUninitializedCapacity: outHeight * stride) { out, filled in
            src.withUnsafeBufferPointer { s in
                c.weights.withUnsafeBufferPointer { k in
                    withUnsafeTemporaryAllocation(of: Int32.self, capacity: stride) { acc in
                        for yy in 0 ..< outHeight {
                            let y0 = c.first[yy] - rowOffset, n = c.count[yy], kk = k.baseAddress! + yy * c.taps
                            acc.initialize(repeating: half)
                            for y in 0 ..< n {
                                let w = kk[y], line = s.baseAddress! + (y0 + y) * stride
                                for i in 0 ..< stride { acc[i] &+= Int32(line[i]) &* w }
                            }
                            let o = out.baseAddress! + yy * stride
                            for i in 0 ..< stride { o[i] = clip8(acc[i]) }
                        }
                    }
                }
            }
            filled = outHeight * stride
        }
    }
}
