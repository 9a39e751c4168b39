import QwenFormats
import QwenTensors
import QwenTestSupport
import Testing

/// Checks against Tests/Fixtures/quants (scripts/fixtures/make_quant_fixtures.py `blocks`): dequantization bit for
/// bit against gguf-py (= llama.cpp's C), activation quantization byte for byte against llama.cpp, and row dot
/// products against llama.cpp's own ggml_vec_dot_* to float rounding.
@Suite struct QuantFixtureTests {
    static let index: JSON = try! TestSupport.readJSON(TestSupport.fixture("quants/index.json"))

    static func bytes(_ name: String) throws -> [UInt8] {
        let f = try FileBytes(path: TestSupport.fixture("quants/" + name), map: true)
        return Array(UnsafeRawBufferPointer(start: f.base, count: f.count))
    }

    static func floats(_ name: String) throws -> [Float] { try TestSupport.readFloats(TestSupport.fixture("quants/" + name)) }

    static var dequantCases: [String] { index["dequant"]!.array!.map { $0["type"]!.string! } }
    static var dotCases: [String] { index["dots"]!.array!.map { $0["type"]!.string! } }

    static func entry(_ list: String, _ type: String) -> JSON {
        index[list]!.array!.first { $0["type"]!.string! == type }!
    }

    @Test func fixturesCoverEveryWeightType() {
        let names = Set(Self.dequantCases)
        for t in ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"] {
            #expect(names.contains(t), "no dequantization fixture for \(t)")
        }
        #expect(Set(Self.dotCases).isSuperset(of: ["Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"]))
    }

    @Test(arguments: dequantCases)
    func dequantizationIsBitExact(typeName: String) throws {
        let e = Self.entry("dequant", typeName)
        let type = TensorType(rawValue: UInt32(e["type_id"]!.int!))!
        #expect(type.name == typeName)
        #expect(type.blockSize == e["block_elements"]!.int! && type.blockBytes == e["block_bytes"]!.int!)
        let n = e["elements"]!.int!
        let raw = try Self.bytes(e["blocks_file"]!.string!)
        let expected = try Self.floats(e["floats_file"]!.string!)
        #expect(raw.count == type.byteCount(elements: n)! && expected.count == n)
        let got = try dequantized(type, raw, n)
        // blocks with Inf/NaN scales (listed in the index) must give NaN where the reference has NaN (any payload)
        let nonfinite = Set(e["nonfinite_blocks"]?.array?.map { $0.int! } ?? [])
        #expect(type.blockSize == 1 || e["edge_blocks"]!.int! >= 12, "\(typeName): the edge blocks are missing")
        var mismatches = 0, nans = 0
        for i in 0 ..< n where got[i].bitPattern != expected[i].bitPattern {
            if expected[i].isNaN, got[i].isNaN {
                nans += 1
                continue
            }
            if mismatches < 5 { Issue.record("\(typeName)[\(i)] (block \(i / type.blockSize)): got \(got[i]) (0x\(String(got[i].bitPattern, radix: 16))), expected \(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16)))") }
            mismatches += 1
        }
        #expect(mismatches == 0, "\(typeName): \(mismatches) of \(n) floats differ")
        // the scalar conversions (the portable paths) too
        if type == .f16 || type == .bf16 {
            raw.withUnsafeBytes { p in
                for i in 0 ..< n {
                    let h = p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    let v = type == .f16 ? f16ToFloat(h) : bf16ToFloat(h)
                    #expect(v.bitPattern == expected[i].bitPattern, "\(typeName) scalar [\(i)]")
                }
            }
        }
        if type.blockSize > 1 {
            #expect(!nonfinite.isEmpty, "\(typeName): no blocks with non-finite scales")
            for b in nonfinite { #expect((0 ..< type.blockSize).contains { got[b * type.blockSize + $0].isNaN || got[b * type.blockSize + $0].isInfinite }) }
        }
        print("quant fixtures: \(typeName): \(n) floats, \(n - mismatches - nans) bit-identical to gguf-py, \(nans) NaN for NaN"
              + " (\(nonfinite.count) blocks with non-finite scales)")
    }

    @Test(arguments: ["q8_0", "q8_1", "q8_K"])
    func activationQuantizationMatchesLlamaCpp(format: String) throws {
        let e = Self.index["activations"]!.array!.first { $0["format"]!.string! == format }!
        let rows = e["rows"]!.int!, n = e["n"]!.int!, rowBytes = e["row_bytes"]!.int!
        let x = try Self.floats(e["input_file"]!.string!)
        let expected = try Self.bytes(e["output_file"]!.string!)
        let f: ActivationFormat = format == "q8_0" ? .q8_0 : format == "q8_1" ? .q8_1 : .q8_K
        #expect(f.rowBytes(columns: n) == rowBytes)
        for path in [KernelPath.portable, .simd] {
            for r in 0 ..< rows {
                let got = prepared(Array(x[r * n ..< (r + 1) * n]), f, path: path)
                #expect(got == Array(expected[r * rowBytes ..< (r + 1) * rowBytes]), "\(format) row \(r) on \(path)")
            }
        }
    }

    @Test(arguments: dotCases)
    func rowDotsMatchLlamaCpp(typeName: String) throws {
        let e = Self.entry("dots", typeName)
        let type = TensorType.allCases.first { $0.name == typeName }!
        let rows = e["rows"]!.int!, n = e["n"]!.int!
        let w = try Self.bytes(e["weights_file"]!.string!)
        let x = try Self.floats(e["x_file"]!.string!)
        let expected = try Self.floats(e["results_file"]!.string!)
        let rowBytes = type.byteCount(elements: n)!
        let format = WeightKernels.lookup(type)!.activation
        var worst = 0.0
        for r in 0 ..< rows {
            let wr = Array(w[r * rowBytes ..< (r + 1) * rowBytes])
            let xq = prepared(Array(x[r * n ..< (r + 1) * n]), format, path: .portable)
            // float rounding allowance, relative to Σ|w·x| (the activations, Q8_1's s included, are llama.cpp's bytes)
            let wf = try dequantized(type, wr, n), xf = activationValues(xq, format, n)
            var magnitude = 0.0
            for i in 0 ..< n { magnitude += abs(Double(wf[i]) * Double(xf[i])) }
            let tolerance = 1e-5 * magnitude + 1e-6
            for path in [KernelPath.portable, .simd] {
                let got = rowDot(type, wr, xq, n, path: path)
                let diff = abs(Double(got) - Double(expected[r]))
                worst = max(worst, diff / max(magnitude, 1e-30))
                #expect(diff <= tolerance, "\(typeName) row \(r) \(path): \(got) vs llama.cpp \(expected[r]) (tolerance \(tolerance))")
            }
        }
        print("quant fixtures: \(typeName) dot vs llama.cpp: worst |Δ| / Σ|w·x| = \(worst)")
    }
}
