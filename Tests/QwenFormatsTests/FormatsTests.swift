import QwenFormats
import QwenTestSupport
import Testing

@Suite struct JSONTests {
    @Test func parsesValues() throws {
        let v = try JSON.parse(#"{"a": [1, -2.5, 3e2, true, false, null], "b": "x\"\\\/\n\u00e9\ud83d\ude00", "a": {"c": {}}}"#)
        #expect(v["a"]?["c"]?.object?.isEmpty == true)  // last duplicate wins
        #expect(v["b"]?.string == "x\"\\/\n\u{e9}😀")
        let arr = try JSON.parse("[1, -2.5, 3e2, 12345678901234567]").array!
        #expect(arr[0].int == 1)
        #expect(arr[1].double == -2.5)
        #expect(arr[2].int == 300)
        #expect(arr[3].double == 12_345_678_901_234_568)
        #expect(try JSON.parse("  \"\\ud800x\" ").string == "\u{FFFD}x")  // lone surrogate
    }

    @Test func roundTripsThroughSerialization() throws {
        let text = #"{"k":[1,2.5,"s\n\u0001",null,true,{"z":false}]}"#
        let v = try JSON.parse(text)
        #expect(try JSON.parse(v.serialized) == v)
    }

    @Test(arguments: ["", "{", "[1,", "{\"a\" 1}", "[1 2]", "tru", "\"abc", "01x", "{\"a\":1}x", "-", "1.", "1e", "\"\\q\"", "\"\u{01}\""])
    func rejectsMalformed(_ text: String) {
        #expect(throws: QwenError.self) { try JSON.parse(text) }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: QwenError.self) { try JSON.parse(deep) }
    }
}

@Suite struct GGUFTests {
    func sampleFile() throws -> [UInt8] {
        var w = GGUFWriter()
        w.set("general.architecture", .string("test"))
        w.set("test.count", .uint(7, .uint32))
        w.set("test.neg", .int(-3, .int8))
        w.set("test.flag", .bool(true))
        w.set("test.pi", .float(3.5, .float32))
        w.set("test.list", .array(.string, [.string("a"), .string("béta"), .string("")]))
        w.set("test.ints", .array(.int32, [.int(1, .int32), .int(-2, .int32)]))
        let floats: [Float] = (0 ..< 12).map { Float($0) * 0.5 }
        try w.addTensor(name: "m", type: .f32, shape: [3, 4], bytes: floats.withUnsafeBytes { Array($0) })
        try w.addTensor(name: "q", type: .q8_0, shape: [1, 32], bytes: [UInt8](repeating: 1, count: 34))
        return try w.serialize()
    }

    @Test func writesAndReadsBack() throws {
        let path = TestSupport.temporaryPath("rt.gguf")
        TestSupport.writeBytes(try sampleFile(), to: path)
        let g = try GGUFFile(path: path)
        #expect(g.version == 3)
        #expect(g["general.architecture"]?.string == "test")
        #expect(g["test.count"] == .uint(7, .uint32))
        #expect(g["test.neg"]?.int == -3)
        #expect(g["test.flag"]?.bool == true)
        #expect(g["test.pi"]?.double == 3.5)
        #expect(g["test.list"]?.strings == ["a", "béta", ""])
        #expect(g["test.ints"]?.ints == [1, -2])
        let m = try #require(g.tensor("m"))
        #expect(m.shape == [3, 4] && m.type == .f32)
        #expect(m.data.load(fromByteOffset: 4 * 5, as: Float.self) == 2.5)
        #expect(Int(bitPattern: m.data) % 32 == 0)
        #expect(g.tensor("q")?.byteCount == 34)
    }

    @Test func everyTruncationIsAFormatError() throws {
        let bytes = try sampleFile()
        let path = TestSupport.temporaryPath("trunc.gguf")
        let dataEnd = bytes.count - 30  // the last tensor (34 bytes of Q8_0) is followed by padding to 64
        for cut in stride(from: 0, to: dataEnd, by: 7) + [dataEnd - 1] {
            TestSupport.writeBytes(Array(bytes[..<cut]), to: path)
            #expect(throws: QwenError.self) { try GGUFFile(path: path) }
        }
        // the padding after the last tensor is not needed
        TestSupport.writeBytes(Array(bytes[..<dataEnd]), to: path)
        #expect(try GGUFFile(path: path).tensors.count == 2)
    }

    @Test func hostileCountsAreRefusedBeforeAllocating() throws {
        // header claiming 2^40 tensors and a 2^60-byte key
        var bytes: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0]
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        let path = TestSupport.temporaryPath("hostile.gguf")
        TestSupport.writeBytes(bytes + u64(1 << 40) + u64(0) + [UInt8](repeating: 0, count: 64), to: path)
        let e1 = #expect(throws: QwenError.self) { try GGUFFile(path: path) }
        #expect(e1?.status == .format)
        bytes += u64(0) + u64(1) + u64(1 << 60)
        TestSupport.writeBytes(bytes + [UInt8](repeating: 0x41, count: 64), to: path)
        let e2 = #expect(throws: QwenError.self) { try GGUFFile(path: path) }
        #expect(e2?.status == .format)
    }

    @Test func rejectsWrongMagicAndVersion() throws {
        let path = TestSupport.temporaryPath("magic.gguf")
        TestSupport.writeBytes(Array("GGUX".utf8) + [UInt8](repeating: 0, count: 40), to: path)
        #expect((#expect(throws: QwenError.self) { try GGUFFile(path: path) })?.status == .format)
        TestSupport.writeBytes(Array("GGUF".utf8) + [9, 0, 0, 0] + [UInt8](repeating: 0, count: 40), to: path)
        #expect((#expect(throws: QwenError.self) { try GGUFFile(path: path) })?.status == .unsupported)
        #expect((#expect(throws: QwenError.self) { try GGUFFile(path: "/nonexistent/x.gguf") })?.status == .io)
    }
}

@Suite struct SafetensorsTests {
    func file(header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    @Test func readsTensors() throws {
        let path = TestSupport.temporaryPath("ok.safetensors")
        let data: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64, 0x80, 0x3F]  // f32 1, 2 then bf16 1
        TestSupport.writeBytes(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]},"__metadata__":{"format":"pt"}}"#, data: data), to: path)
        let s = try SafetensorsFile(path: path)
        #expect(s.tensor("a")?.shape == [2])
        #expect(s.tensor("a")?.data.loadUnaligned(fromByteOffset: 4, as: Float.self) == 2)
        #expect(s.tensor("b")?.type == .bf16)
        #expect(s.metadata.first?.key == "format")
    }

    @Test(arguments: [
        #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,  // size mismatch
        #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,  // past the end
        #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,  // reversed
        #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
        #"{"a":{"dtype":"F32"}}"#,
        #"{"a":"#,
        #"[1]"#,
    ])
    func rejectsMalformedHeaders(_ header: String) {
        let path = TestSupport.temporaryPath("bad.safetensors")
        TestSupport.writeBytes(file(header: header, data: [UInt8](repeating: 0, count: 8)), to: path)
        #expect(throws: QwenError.self) { try SafetensorsFile(path: path) }
    }

    @Test func rejectsHugeHeaderLength() {
        let path = TestSupport.temporaryPath("huge.safetensors")
        TestSupport.writeBytes(withUnsafeBytes(of: UInt64(1 << 62).littleEndian) { Array($0) } + [1, 2, 3], to: path)
        #expect((#expect(throws: QwenError.self) { try SafetensorsFile(path: path) })?.status == .format)
    }
}
