import Foundation

/// The JSON published on exchange `model3d.result` with routing key `model3d.result.succeeded` or
/// `model3d.result.failed`. Paths are relative to the uploads root. Absent values are omitted.
public struct ResultEvent: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case succeeded
        case failed
    }

    public var status: Status
    public var memberId: Int64?
    /// The job's timestamp (epoch ms), as received.
    public var timestamp: Int64?
    public var imageUrl: String?
    /// e.g. `image_12345_20240108_160000.jpg`
    public var imagePath: String?
    /// The primary model, e.g. `models/model3d_12345_20240108_160000.obj`
    public var modelPath: String?
    /// Every model file (primary first).
    public var modelPaths: [String]?
    public var vertexCount: Int?
    public var faceCount: Int?
    /// The model's width, depth and height in metres, when the engine knows them.
    public var size: ModelSize?
    /// How the size was found: `given_height`, or `unknown` (the model then has a height of 1).
    public var sizeSource: String?
    /// Milliseconds per stage: `download`, `save`, the engine's stages, and `total`.
    public var durationsMs: [String: Double]
    /// Which attempt this was (1 = first).
    public var attempts: Int
    /// True when a redelivered job found its model already made and nothing was regenerated.
    public var alreadyDone: Bool?
    public var errorCode: String?
    public var errorMessage: String?
    /// Carried over from the job's AMQP properties.
    public var messageId: String?
    public var correlationId: String?
    /// When the worker finished, epoch ms.
    public var finishedAt: Int64
    /// `host:pid` of the worker.
    public var worker: String

    public init(status: Status, memberId: Int64? = nil, timestamp: Int64? = nil, imageUrl: String? = nil,
                imagePath: String? = nil, modelPath: String? = nil, modelPaths: [String]? = nil,
                vertexCount: Int? = nil, faceCount: Int? = nil, durationsMs: [String: Double] = [:],
                attempts: Int = 1, alreadyDone: Bool? = nil, errorCode: String? = nil, errorMessage: String? = nil,
                messageId: String? = nil, correlationId: String? = nil, finishedAt: Int64, worker: String) {
        self.status = status
        self.memberId = memberId
        self.timestamp = timestamp
        self.imageUrl = imageUrl
        self.imagePath = imagePath
        self.modelPath = modelPath
        self.modelPaths = modelPaths
        self.vertexCount = vertexCount
        self.faceCount = faceCount
        self.durationsMs = durationsMs
        self.attempts = attempts
        self.alreadyDone = alreadyDone
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.messageId = messageId
        self.correlationId = correlationId
        self.finishedAt = finishedAt
        self.worker = worker
    }

    /// Routing key on `model3d.result`.
    public var routingKey: String { "model3d.result.\(status.rawValue)" }

    /// Compact JSON with sorted keys.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings and numbers cannot fail.
        return Array(try! encoder.encode(self))
    }
}
