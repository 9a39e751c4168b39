import QwenFormats
import QwenTensors
import QwenTestSupport
import Testing

/// The weight quantizers against llama.cpp's (Tests/Fixtures/quantize, scripts/fixtures/make_quant_fixtures.py
/// `quantize`: ggml_quantize_chunk without an importance matrix on rows of random and edge values).
@Suite struct WeightQuantizerTests {
    static let meta: JSON = try! TestSupport.readJSON(TestSupport.fixture("quantize/meta.json"))
    static var typeNames: [String] { meta["types"]!.array!.map { $0.string! } }

    @Test(arguments: typeNames)
    func blocksEqualLlamaCpp(typeName: String) throws {
        let type = try #require(TensorType.allCases.first { $0.name == typeName })
        let rows = Self.meta["rows"]!.int!, columns = Self.meta["columns"]!.int!
        let x = try TestSupport.readFloats(TestSupport.fixture("quantize/rows.f32"))
        let expected = try FileBytes(path: TestSupport.fixture("quantize/\(typeName).out"), map: true)
        let rowBytes = try #require(type.byteCount(elements: columns))
        #expect(expected.count == rows * rowBytes)
        var out = [UInt8](repeating: 0xEE, count: rowBytes)
        var differingBlocks: [String] = []
        for r in 0 ..< rows {
            x.withUnsafeBufferPointer { xs in
                out.withUnsafeMutableBytes { WeightQuantizer.quantize(type, xs.baseAddress! + r * columns, $0.baseAddress!, columns) }
            }
            let blocks = columns / type.blockSize
            for b in 0 ..< blocks {
                let offset = b * type.blockBytes
                let reference = UnsafeRawBufferPointer(start: expected.base + r * rowBytes + offset, count: type.blockBytes)
                if !out[offset ..< offset + type.blockBytes].elementsEqual(reference) { differingBlocks.append("row \(r) block \(b)") }
            }
        }
        #expect(differingBlocks.isEmpty, "\(typeName): \(differingBlocks.count) blocks differ: \(differingBlocks.prefix(8))")
    }
}
