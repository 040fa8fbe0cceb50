import Foundation
import Hummingbird
import Lookalike
import ServiceLifecycle

/// Jobs: index a folder on the server in the background, poll it or follow its events.
extension LookalikeServer {
    func addJobRoutes(to v1: Routes.Group) {
        v1.post("collections/:collection/jobs") { request, context in
            try await self.startJob(request, collection: try context.parameters.require("collection"))
        }
        v1.get("jobs") { _, _ in JSON.response(["jobs": try self.jobs.all().map(\.json)]) }
        v1.get("jobs/:job") { _, context in
            JSON.response(try self.job(context).json)
        }
        v1.get("jobs/:job/events") { _, context in
            try self.jobEvents(try self.job(context).id)
        }
    }

    func startJob(_ request: Request, collection: String) async throws -> Response {
        struct Body: RequestBody {
            let path: String
            let recursive: Bool?
            let model: String?
            let tiles: Bool?
            static let fields = ["path", "recursive", "model", "tiles"]
        }
        let engine = try collections.engine(collection)
        let body: Body = try decodeJSON(try await readJSONBody(request))
        let model = try body.model ?? engine.defaultAddModel()
        // Images are added with a model of their own; the tuned models over it follow by projection.
        try checkModel(model, engine: engine, tuned: false)
        let confinement = PathConfinement(roots: configuration.indexRoots)
        guard !confinement.roots.isEmpty else {
            throw APIError(.forbidden, "path_not_allowed", "this server indexes no folders (start it with --index-root)")
        }
        guard !body.path.isEmpty, body.path.count <= 4096, body.path.hasPrefix("/") else {
            throw APIError.badRequest("path must be an absolute path on the server")
        }
        guard let resolved = PathConfinement.resolved(body.path) else {
            throw APIError.notFound("there is no file or folder at \(body.path)")
        }
        guard confinement.allows(resolved) else {
            throw APIError(.forbidden, "path_not_allowed",
                           "\(body.path) is outside the folders this server may index (\(confinement.roots.joined(separator: ", ")))")
        }
        let job = try jobs.submit(collection: collection, engine: engine, path: resolved,
                              options: AddOptions(recursive: body.recursive ?? true, model: model, allowedRoots: confinement.roots,
                                                  tiles: body.tiles ?? false))
        return JSON.response(job.json, status: .accepted)
    }

    func job(_ context: BasicRequestContext) throws -> Jobs.Job {
        let id = try context.parameters.require("job")
        guard let job = try jobs.job(id) else { throw APIError.notFound("no job with id \(id)") }
        return job
    }

    /// Server-sent events: the job as it changes, then `end` (`progressEvents`).
    func jobEvents(_ id: String) throws -> Response {
        let jobs = self.jobs
        return try progressEvents {
            try jobs.job(id).map { (JSON.data($0.json), $0.revision, $0.isOver) }
        }
    }

    /// Server-sent events of something that changes until it is over (a job, a tuning): `current`
    /// gives its JSON, its revision and whether it is over, nil once it is gone. An event when the
    /// revision changes (at most five times a second), `end` for the last; a comment every 15 s
    /// of quiet. At most `maxEventStreams` at once: each holds a ticket until its body ends or is dropped.
    func progressEvents(_ current: @escaping @Sendable () throws -> (json: Data, revision: Int, isOver: Bool)?) throws -> Response {
        let ticket = try Gate.Held(eventStreams)
        let body = ResponseBody { writer in
            defer { withExtendedLifetime(ticket) {} }
            var sent = -1
            var quiet = 0
            while let state = try current(), !Task.isCancelled, !Task.isShuttingDownGracefully {
                if state.revision != sent || state.isOver {
                    sent = state.revision
                    quiet = 0
                    let event = "event: \(state.isOver ? "end" : "progress")\ndata: \(String(decoding: state.json, as: UTF8.self))\n\n"
                    try await writer.write(ByteBuffer(string: event))
                } else {
                    quiet += 1
                    if quiet % 75 == 0 { try await writer.write(ByteBuffer(string: ": still working\n\n")) }  // every 15 s
                }
                if state.isOver { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
