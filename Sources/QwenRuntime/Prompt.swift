import QwenFormats
import QwenModels

/// Embeddings of one image or audio clip as the language model takes them: `rows` vectors of the model's
/// hidden size, each standing in the sequence where a placeholder token would be.
public final class MediaEmbedding: @unchecked Sendable {
    public let rows: Int
    /// rows × hidden floats, row-major.
    public let values: [Float]
    /// The token recorded in the cache for each row (`<|image_pad|>`, `<|AUDIO|>`, ...).
    public let placeholder: Int32
    /// Identifies the content (same pixels or samples and settings → same key), so a cached prefix holding
    /// this media is reused and a different one is not.
    public let key: UInt64
    /// M-RoPE layout of the rows: temporal × height × width after merging (rows = t·h·w); nil: one position
    /// per row, as text.
    public let grid: (t: Int, h: Int, w: Int)?

    public init(rows: Int, values: [Float], placeholder: Int32, key: UInt64, grid: (t: Int, h: Int, w: Int)? = nil) throws {
        guard rows > 0, values.count % rows == 0 else {
            throw QwenError.invalidArgument("media embedding: \(values.count) values do not make \(rows) rows")
        }
        if let grid, grid.t * grid.h * grid.w != rows || grid.t < 1 || grid.h < 1 || grid.w < 1 {
            throw QwenError.invalidArgument("media embedding: grid \(grid) does not hold \(rows) rows")
        }
        self.rows = rows
        self.values = values
        self.placeholder = placeholder
        self.key = key
        self.grid = grid
    }
}

/// A run of prompt content: token ids, or the rows of an image or clip.
public enum PromptPiece {
    case tokens([Int32])
    case media(MediaEmbedding)
}

/// Prompt pieces laid out for evaluation: per position the token, the row of `embeddings` standing in for
/// it (-1: none), its RoPE position components, what media row it is (0: none) and the RoPE position of
/// the token after it.
public struct PromptPlan {
    public private(set) var tokens: [Int32] = []
    public private(set) var rows: [Int32] = []
    public private(set) var embeddings: [Float] = []
    /// [component][position]: one component, or temporal/height/width with M-RoPE.
    public private(set) var positions: [[Int32]]
    public private(set) var mediaKeys: [UInt64] = []
    public private(set) var ropeNext: [Int32] = []

    /// `after`: the RoPE position of the first token; `mrope`: the model uses M-RoPE (media grids then span
    /// their own height and width positions, as transformers' get_rope_index lays them out).
    public init(pieces: [PromptPiece], after start: Int32, mrope: Bool) {
        let components = mrope ? 3 : 1
        positions = Array(repeating: [], count: components)
        var next = start
        func append(_ token: Int32, row: Int32, key: UInt64, position: (Int32, Int32, Int32), following: Int32) {
            tokens.append(token)
            rows.append(row)
            mediaKeys.append(key)
            positions[0].append(position.0)
            if mrope {
                positions[1].append(position.1)
                positions[2].append(position.2)
            }
            ropeNext.append(following)
        }
        for piece in pieces {
            switch piece {
            case let .tokens(ids):
                for id in ids {
                    append(id, row: -1, key: 0, position: (next, next, next), following: next + 1)
                    next += 1
                }
            case let .media(m):
                let firstRow = Int32(embeddings.count / max(1, m.values.count / m.rows))
                embeddings.append(contentsOf: m.values)
                for k in 0 ..< m.rows {
                    let key = (m.key &+ UInt64(k)) | (1 << 63)  // never 0, the text key
                    if mrope, let g = m.grid {
                        let p = (next + Int32(k / (g.h * g.w)), next + Int32((k / g.w) % g.h), next + Int32(k % g.w))
                        append(m.placeholder, row: firstRow + Int32(k), key: key, position: p, following: max(p.0, p.1, p.2) + 1)
                    } else {
                        let p = next + Int32(k)
                        append(m.placeholder, row: firstRow + Int32(k), key: key, position: (p, p, p), following: p + 1)
                    }
                }
                next = ropeNext.last ?? next
            }
        }
    }

    /// Positions from `start` on (row indices keep pointing into the same embeddings).
    public func suffix(from start: Int) -> PromptPlan {
        var s = self
        s.tokens = Array(tokens[start...])
        s.rows = Array(rows[start...])
        s.positions = positions.map { Array($0[start...]) }
        s.mediaKeys = Array(mediaKeys[start...])
        s.ropeNext = Array(ropeNext[start...])
        return s
    }
}
