// The image part of the C ABI (include/qwen.h, "Images", "Prompts and chats with media"): images from files,
// memory or RGB pixels, their embeddings, projectors, and prompts and chats holding images and audio clips.
import CQwen
import QwenFormats
import QwenMedia
import QwenModels
import QwenRuntime

final class ImageHandle {
    let image: RGBImage
    var minPixels = 0
    var maxPixels = 0
    init(_ image: RGBImage) { self.image = image }

    var input: ImageInput { ImageInput(image, minPixels: minPixels, maxPixels: maxPixels) }
}

func imageHandle(_ p: OpaquePointer?, _ function: String) throws -> ImageHandle {
    guard let h = handles.lookup(p, as: ImageHandle.self) else {
        throw QwenError.invalidArgument("\(function): \(p == nil ? "img is NULL" : "not a live qwen_image handle")")
    }
    return h
}

func decodeOptions(_ params: UnsafePointer<qwen_image_params>?, _ function: String) throws -> RGBImage.DecodeOptions {
    let p = params?.pointee ?? qwenImageDefaultParams()
    guard p.max_pixels >= 0, p.apply_orientation == 0 || p.apply_orientation == 1 else {
        throw QwenError.invalidArgument("\(function): max_pixels must not be negative and apply_orientation must be 0 or 1")
    }
    var o = RGBImage.DecodeOptions()
    if p.max_pixels > 0 { o.maxPixels = Int(p.max_pixels) }
    o.applyOrientation = p.apply_orientation != 0
    return o
}

/// The images and clips of a prompt call, images first (each kind is matched to its own placeholders).
func promptMedia(_ images: UnsafePointer<OpaquePointer?>?, _ nImages: Int32, _ audios: UnsafePointer<OpaquePointer?>?,
                 _ nAudios: Int32, _ function: String) throws -> [PromptMedia] {
    guard nImages >= 0, nAudios >= 0 else { throw QwenError.invalidArgument("\(function): negative media count") }
    guard images != nil || nImages == 0 else { throw QwenError.invalidArgument("\(function): images is NULL") }
    guard audios != nil || nAudios == 0 else { throw QwenError.invalidArgument("\(function): audios is NULL") }
    var media: [PromptMedia] = []
    for i in 0 ..< Int(nImages) { media.append(try imageHandle(images![i], "\(function) (image \(i))").input) }
    for i in 0 ..< Int(nAudios) { media.append(AudioInput(try audioClip(audios![i], "\(function) (audio \(i))"))) }
    return media
}

@_cdecl("qwen_model_load_projector")
public func qwenModelLoadProjector(_ p: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_model_load_projector")
        guard let path else { throw QwenError.invalidArgument("qwen_model_load_projector: path is NULL") }
        try m.loadProjector(path: String(cString: path))
        return 0
    }
}

@_cdecl("qwen_model_has_vision")
public func qwenModelHasVision(_ p: OpaquePointer?) -> Int32 {
    guarded { try model(p, "qwen_model_has_vision").vision != nil ? 1 : 0 }
}

@_cdecl("qwen_model_has_audio")
public func qwenModelHasAudio(_ p: OpaquePointer?) -> Int32 {
    guarded { try model(p, "qwen_model_has_audio").audio != nil ? 1 : 0 }
}

@_cdecl("qwen_image_default_params")
public func qwenImageDefaultParams() -> qwen_image_params {
    qwen_image_params(max_pixels: 0, apply_orientation: 1)
}

@_cdecl("qwen_image_load")
public func qwenImageLoad(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    qwenImageLoadEx(path, nil, out)
}

@_cdecl("qwen_image_load_ex")
public func qwenImageLoadEx(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<qwen_image_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_image_load: out is NULL") }
        out.pointee = nil
        guard let path else { throw QwenError.invalidArgument("qwen_image_load: path is NULL") }
        let image = try RGBImage.load(path: String(cString: path), options: try decodeOptions(params, "qwen_image_load"))
        out.pointee = handles.register(ImageHandle(image))
        return 0
    }
}

@_cdecl("qwen_image_decode")
public func qwenImageDecode(_ data: UnsafeRawPointer?, _ size: Int64, _ params: UnsafePointer<qwen_image_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_image_decode: out is NULL") }
        out.pointee = nil
        guard let data, size > 0 else { throw QwenError.invalidArgument("qwen_image_decode: data is NULL or size not positive") }
        let image = try RGBImage.decode(UnsafeRawBufferPointer(start: data, count: Int(size)),
                                        options: try decodeOptions(params, "qwen_image_decode"))
        out.pointee = handles.register(ImageHandle(image))
        return 0
    }
}

@_cdecl("qwen_image_from_rgb8")
public func qwenImageFromRGB8(_ rgb: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw QwenError.invalidArgument("qwen_image_from_rgb8: out is NULL") }
        out.pointee = nil
        guard let rgb else { throw QwenError.invalidArgument("qwen_image_from_rgb8: rgb is NULL") }
        guard width > 0, height > 0, Int(width) * Int(height) <= RGBImage.defaultPixelLimit else {
            throw QwenError.invalidArgument("qwen_image_from_rgb8: size \(width)x\(height) is not positive or over " +
                                            "\(RGBImage.defaultPixelLimit) pixels")
        }
        let image = try RGBImage(rgb: UnsafeRawBufferPointer(start: rgb, count: Int(width) * Int(height) * 3),
                                 width: Int(width), height: Int(height))
        out.pointee = handles.register(ImageHandle(image))
        return 0
    }
}

@_cdecl("qwen_image_free")
public func qwenImageFree(_ img: OpaquePointer?) {
    handles.release(img, as: ImageHandle.self)
}

@_cdecl("qwen_image_width")
public func qwenImageWidth(_ img: OpaquePointer?) -> Int32 {
    guarded { Int32(try imageHandle(img, "qwen_image_width").image.width) }
}

@_cdecl("qwen_image_height")
public func qwenImageHeight(_ img: OpaquePointer?) -> Int32 {
    guarded { Int32(try imageHandle(img, "qwen_image_height").image.height) }
}

@_cdecl("qwen_image_copy_rgb8")
public func qwenImageCopyRGB8(_ img: OpaquePointer?, _ out: UnsafeMutablePointer<UInt8>?, _ capacity: Int64) -> Int64 {
    do {
        let pixels = try imageHandle(img, "qwen_image_copy_rgb8").image.pixels
        guard capacity >= 0, out != nil || capacity == 0 else {
            throw QwenError.invalidArgument("qwen_image_copy_rgb8: out is NULL or capacity negative")
        }
        guard capacity >= Int64(pixels.count) else {
            throw QwenError(.bufferTooSmall, "qwen_image_copy_rgb8: \(pixels.count) bytes needed, capacity \(capacity)")
        }
        pixels.withUnsafeBufferPointer { out!.update(from: $0.baseAddress!, count: pixels.count) }
        return Int64(pixels.count)
    } catch { return Int64(fail(error)) }
}

@_cdecl("qwen_grounding_boxes")
public func qwenGroundingBoxes(_ text: UnsafePointer<CChar>?, _ width: Int32, _ height: Int32, _ out: UnsafeMutablePointer<qwen_box>?,
                               _ capacity: Int32) -> Int32 {
    guarded {
        guard let text else { throw QwenError.invalidArgument("qwen_grounding_boxes: text is NULL") }
        guard capacity >= 0, out != nil || capacity == 0 else {
            throw QwenError.invalidArgument("qwen_grounding_boxes: boxes is NULL or capacity negative")
        }
        guard (width > 0 && height > 0) || (width == 0 && height == 0) else {
            throw QwenError.invalidArgument("qwen_grounding_boxes: the image size must be positive, or 0 x 0")
        }
        let boxes = Grounding.boxes(in: String(cString: text))
        func clamp(_ v: Int) -> Int32 { Int32(clamping: v) }
        for (i, b) in boxes.prefix(Int(capacity)).enumerated() {
            let p = width > 0 ? b.pixels(width: Int(width), height: Int(height)) : (b.x1, b.y1, b.x2, b.y2)
            out![i] = qwen_box(x1: clamp(p.0), y1: clamp(p.1), x2: clamp(p.2), y2: clamp(p.3),
                               ref_offset: b.refBytes.map { clamp($0.lowerBound) } ?? -1, ref_length: clamp(b.refBytes?.count ?? 0))
        }
        return Int32(clamping: boxes.count)
    }
}

@_cdecl("qwen_image_set_pixel_bounds")
public func qwenImageSetPixelBounds(_ img: OpaquePointer?, _ minPixels: Int64, _ maxPixels: Int64) -> Int32 {
    guarded {
        let h = try imageHandle(img, "qwen_image_set_pixel_bounds")
        guard minPixels >= 0, maxPixels >= 0, maxPixels == 0 || minPixels <= maxPixels, maxPixels <= 1 << 34, minPixels <= 1 << 34 else {
            throw QwenError.invalidArgument("qwen_image_set_pixel_bounds: need 0 <= min_pixels <= max_pixels (0 = the model's)")
        }
        h.minPixels = Int(minPixels)
        h.maxPixels = Int(maxPixels)
        return 0
    }
}

@_cdecl("qwen_image_n_tokens")
public func qwenImageNTokens(_ p: OpaquePointer?, _ img: OpaquePointer?) -> Int32 {
    guarded {
        let m = try model(p, "qwen_image_n_tokens"), h = try imageHandle(img, "qwen_image_n_tokens")
        guard let vision = m.vision else { throw QwenError.unsupported("qwen_image_n_tokens: the model takes no images") }
        let s = vision.settings(minPixels: h.minPixels, maxPixels: h.maxPixels)
        return Int32(clamping: try vision.tokenCount(width: h.image.width, height: h.image.height, settings: s))
    }
}

@_cdecl("qwen_image_embed")
public func qwenImageEmbed(_ ctx: OpaquePointer?, _ img: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                           _ nTokens: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_image_embed"), h = try imageHandle(img, "qwen_image_embed")
        guard capacity >= 0, out != nil || capacity == 0 else {
            throw QwenError.invalidArgument("qwen_image_embed: out is NULL or capacity negative")
        }
        let e = try c.imageEmbedding(h.image, minPixels: h.minPixels, maxPixels: h.maxPixels)
        nTokens?.pointee = Int32(e.rows)
        guard Int64(e.values.count) <= capacity, let out else {
            throw QwenError(.bufferTooSmall, "qwen_image_embed: \(e.values.count) floats needed, capacity is \(capacity)")
        }
        e.values.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: $0.count) }
        return Int32(e.rows)
    }
}

@_cdecl("qwen_context_eval_prompt")
public func qwenContextEvalPrompt(_ ctx: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ images: UnsafePointer<OpaquePointer?>?,
                                  _ nImages: Int32, _ audios: UnsafePointer<OpaquePointer?>?, _ nAudios: Int32,
                                  _ logits: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_context_eval_prompt")
        guard let text else { throw QwenError.invalidArgument("qwen_context_eval_prompt: text is NULL") }
        let media = try promptMedia(images, nImages, audios, nAudios, "qwen_context_eval_prompt")
        try c.evalPrompt(String(cString: text), media: media, logits: logits)
        return 0
    }
}

@_cdecl("qwen_chat_eval_media")
public func qwenChatEvalMedia(_ ctx: OpaquePointer?, _ list: UnsafePointer<qwen_chat_message>?, _ n: Int32,
                              _ images: UnsafePointer<OpaquePointer?>?, _ nImages: Int32, _ audios: UnsafePointer<OpaquePointer?>?,
                              _ nAudios: Int32, _ addGenerationPrompt: Int32, _ opts: UnsafePointer<qwen_chat_options>?) -> Int32 {
    guarded {
        let c = try context(ctx, "qwen_chat_eval_media")
        let o = opts?.pointee ?? qwenChatDefaultOptions()
        guard o.enable_thinking == 0 || o.enable_thinking == 1 else {
            throw QwenError.invalidArgument("qwen_chat_eval_media: enable_thinking must be 0 or 1, not \(o.enable_thinking)")
        }
        let media = try promptMedia(images, nImages, audios, nAudios, "qwen_chat_eval_media")
        try c.evalChat(try messages(list, n, "qwen_chat_eval_media"), media: media, addGenerationPrompt: addGenerationPrompt != 0,
                       enableThinking: o.enable_thinking != 0)
        return 0
    }
}
