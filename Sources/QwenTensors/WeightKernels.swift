import QwenFormats

/// How a weight type's dot products want their activations prepared (once per input row).
public enum ActivationFormat: Sendable {
    /// Plain floats (F32, F16, BF16 weights).
    case f32
    /// 32-element blocks: F16 scale + 32 × int8 (34 bytes), llama.cpp's `block_q8_0`.
    case q8_0
    /// 32-element blocks: F16 scale, F16 scale × Σ quants, 32 × int8 (36 bytes), llama.cpp's `block_q8_1` (for the
    /// weight types with a min, Q4_1 and Q5_1, whose dots take the min term from the stored sum).
    case q8_1
    /// 256-element blocks: F32 scale + 256 × int8 + 16 × int16 sums of 16 (292 bytes), llama.cpp's `block_q8_K`.
    case q8_K

    /// Bytes of one prepared row of `columns` activations (0 for `.f32`, which is used in place).
    public func rowBytes(columns: Int) -> Int {
        switch self {
        case .f32: return 0
        case .q8_0: return columns / 32 * 34
        case .q8_1: return columns / 32 * 36
        case .q8_K: return columns / 256 * 292
        }
    }

    /// Bytes that hold one row of `columns` activations in any format (for sizing scratch memory).
    public static func largestRowBytes(columns: Int) -> Int {
        max(ActivationFormat.q8_1.rowBytes(columns: columns + 31), ActivationFormat.q8_K.rowBytes(columns: columns + 255),
            TiledMatmul.scratchBytes(columns: columns + 31, tokens: 1))
    }

    /// Prepares `columns` floats (a whole number of blocks) into `dst`.
    @inline(__always)
    public func quantize(_ x: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, columns: Int, path: KernelPath) {
        switch self {
        case .f32: break
        case .q8_0: RowKernels.quantizeQ8_0(x, dst, columns, path: path)
        case .q8_1: QuantDots.quantizeQ8_1(x, dst, columns, path: path)  // Quants/QuantDots.swift
        case .q8_K: RowKernels.quantizeQ8_K(x, dst, columns, path: path)
        }
    }
}

/// The kernels of one weight type on one path: what the activations must look like and the dot product
/// of one weight row with one prepared activation row. Every type the loader accepts is listed here;
/// `linear` uses specialised loops for the common ones and these entries for the rest.
public struct WeightKernels: Sendable {
    public let activation: ActivationFormat
    /// Σ weight·activation over one row of `columns` elements.
    public let dot: @Sendable (_ row: UnsafeRawPointer, _ activations: UnsafeRawPointer, _ columns: Int) -> Float

    public init(activation: ActivationFormat,
                dot: @escaping @Sendable (_ row: UnsafeRawPointer, _ activations: UnsafeRawPointer, _ columns: Int) -> Float) {
        self.activation = activation
        self.dot = dot
    }

    /// The kernels for `type`, nil if the type cannot be multiplied yet.
    public static func lookup(_ type: TensorType, path: KernelPath = .best) -> WeightKernels? {
        switch type {
        case .f32:
            return WeightKernels(activation: .f32) { w, x, n in
                RowKernels.dotF32(n, w.assumingMemoryBound(to: Float.self), x.assumingMemoryBound(to: Float.self))
            }
        case .f16:
            return WeightKernels(activation: .f32) { w, x, n in
                RowKernels.dotF16(n, w.assumingMemoryBound(to: UInt16.self), x.assumingMemoryBound(to: Float.self), path: path)
            }
        case .bf16:
            return WeightKernels(activation: .f32) { w, x, n in
                RowKernels.dotBF16(n, w.assumingMemoryBound(to: UInt16.self), x.assumingMemoryBound(to: Float.self), path: path)
            }
        case .q8_0:
            return WeightKernels(activation: .q8_0) { w, x, n in RowKernels.dotQ8_0(n / 32, w, x, path: path) }
        case .q4_0:
            return WeightKernels(activation: .q8_0) { w, x, n in RowKernels.dotQ4_0(n / 32, w, x, path: path) }
        case .q4_1, .q5_0, .q5_1, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs:
            return QuantDots.kernels(type, path: path)  // Quants/QuantDots.swift
        default:
            return nil
        }
    }
}
