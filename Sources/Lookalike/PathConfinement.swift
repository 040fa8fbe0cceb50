import Foundation

/// Whether a path lies inside one of a set of folders once symbolic links and `..` are resolved,
/// so neither `../` in a request nor a link inside an allowed folder can reach anything else.
public struct PathConfinement: Sendable {
    /// The folders, resolved; folders that do not exist are left out.
    public let roots: [String]

    public init(roots: [String]) {
        self.roots = roots.compactMap(Self.resolved)
    }

    /// The real path of an existing file or folder, or nil.
    public static func resolved(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    /// Whether `path` exists and lies inside a root (or is one).
    public func allows(_ path: String) -> Bool {
        guard let real = Self.resolved(path) else { return false }
        return roots.contains { root in
            real == root || real.hasPrefix(root == "/" ? "/" : root + "/")
        }
    }
}
