import QwenFormats
import QwenModels
import QwenRuntime
import QwenTensors
import QwenTestSupport
import Testing

@Suite struct PromptTests {
    /// Rows of the model's own token embedding stand in for tokens: the result must equal evaluating the tokens.
    @Test func mediaRowsThatAreTokenEmbeddingsEqualTheTokens() throws {
        let path = TestSupport.fixture("tiny/qwen2-f32.gguf")
        let model = try Model.load(path: path)
        let gguf = try GGUFFile(path: path)
        let embd = gguf.tensor("token_embd.weight")!
        let d = model.config.hiddenSize
        let ids = Array(try Reference("hf_qwen2_f32").inputIDs.prefix(24))
        let stand = Array(ids[5 ..< 12])
        var rows = [Float](repeating: 0, count: stand.count * d)
        for (i, t) in stand.enumerated() {
            try rows.withUnsafeMutableBufferPointer {
                try RowKernels.dequantizeRow(.f32, embd.data + Int(t) * d * 4, $0.baseAddress! + i * d, d)
            }
        }
        let media = try MediaEmbedding(rows: stand.count, values: rows, placeholder: 2055, key: 42)
        let a = try context(model), b = try context(model)
        try a.eval(ids)
        try b.eval(pieces: [.tokens(Array(ids[..<5])), .media(media), .tokens(Array(ids[12...]))])
        #expect(Array(a.lastLogits!) == Array(b.lastLogits!))
        #expect(b.tokens[5 ..< 12].allSatisfy { $0 == 2055 })
        #expect(b.mediaKeys[5] != 0 && b.mediaKeys[4] == 0)

        // reuse: the same media (key) is reused, another key is recomputed
        let before = b.evaluatedTokenCount
        try b.evalReusingPrefix(pieces: [.tokens(Array(ids[..<5])), .media(media), .tokens(Array(ids[12...]))])
        #expect(b.evaluatedTokenCount == before)
        let other = try MediaEmbedding(rows: stand.count, values: rows, placeholder: 2055, key: 43)
        try b.evalReusingPrefix(pieces: [.tokens(Array(ids[..<5])), .media(other), .tokens(Array(ids[12...]))])
        #expect(b.evaluatedTokenCount - before == ids.count - 5)
    }

    /// transformers' get_rope_index for one image of grid 1×2×3 between text: the text after the image
    /// continues at image start + max(t, h, w).
    @Test func mropePositionsFollowGetRopeIndex() throws {
        let image = try MediaEmbedding(rows: 6, values: [Float](repeating: 0, count: 6 * 4), placeholder: 9, key: 1, grid: (1, 2, 3))
        let plan = PromptPlan(pieces: [.tokens([1, 2]), .media(image), .tokens([3, 4])], after: 0, mrope: true)
        #expect(plan.positions[0] == [0, 1, 2, 2, 2, 2, 2, 2, 5, 6])  // temporal
        #expect(plan.positions[1] == [0, 1, 2, 2, 2, 3, 3, 3, 5, 6])  // height
        #expect(plan.positions[2] == [0, 1, 2, 3, 4, 2, 3, 4, 5, 6])  // width
        #expect(plan.ropeNext.last == 7)
        #expect(plan.rows == [-1, -1, 0, 1, 2, 3, 4, 5, -1, -1])
        // without M-RoPE, media rows take one position each
        let flat = PromptPlan(pieces: [.tokens([1, 2]), .media(image), .tokens([3])], after: 0, mrope: false)
        #expect(flat.positions[0] == Array(0 ..< 9))
        #expect(throws: QwenError.self) { try MediaEmbedding(rows: 5, values: [Float](repeating: 0, count: 20), placeholder: 9, key: 1, grid: (1, 2, 3)) }
    }
}
