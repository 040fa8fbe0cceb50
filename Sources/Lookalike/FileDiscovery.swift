import Foundation

/// Expands the paths given to `add` into image files.
///
/// Files named explicitly are always tried, whatever their extension. Directories are walked only
/// with `recursive`, in sorted order, skipping hidden entries, keeping files with an image
/// extension, following symbolic links but never into a directory that is already one of the
/// current walk's ancestors (a symlink loop is reported, not followed forever).
enum FileDiscovery {
    static let imageExtensions: Set<String> = [
        "jpg", "jpeg", "jpe", "png", "webp", "gif", "tif", "tiff", "heic", "heif", "avif", "bmp", "jxl", "jp2",
    ]

    struct Result {
        var files: [String] = []
        var failures: [IngestFailure] = []
        /// Entries of walked folders left out: hidden ones, and files without an image extension.
        var skipped = 0
    }

    private struct DirectoryIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// With `confinement`, folders whose real path lies outside its roots are not entered (a link
    /// to `/` inside an allowed folder must not walk the whole disk).
    static func collect(_ paths: [String], recursive: Bool, confinement: PathConfinement? = nil) -> Result {
        var result = Result()
        var walked = Set<DirectoryIdentity>()
        for original in paths {
            let path = URL(fileURLWithPath: original).standardizedFileURL.path
            var status = stat()
            guard stat(path, &status) == 0 else {
                result.failures.append(IngestFailure(path: path, reason: statFailure(errno)))
                continue
            }
            if isDirectory(status) {
                if recursive {
                    let root = identity(status)
                    walk(path, identity: root, ancestors: [root: path], walked: &walked, confinement: confinement, into: &result)
                } else {
                    result.failures.append(IngestFailure(path: path, reason: IngestError.isDirectory.description))
                }
            } else {
                result.files.append(path)
            }
        }
        return result
    }

    /// `ancestors` detects loops (reported); `walked` makes a folder reached twice through links
    /// (siblings linking to each other) be listed once, so a walk can never grow exponentially.
    private static func walk(
        _ directory: String, identity own: DirectoryIdentity, ancestors: [DirectoryIdentity: String],
        walked: inout Set<DirectoryIdentity>, confinement: PathConfinement?, into result: inout Result
    ) {
        guard walked.insert(own).inserted else { return }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            let reason = error.localizedDescription
            result.failures.append(IngestFailure(path: directory, reason: "cannot list directory: \(reason)"))
            return
        }
        for name in entries {
            if name.hasPrefix(".") {
                result.skipped += 1
                continue
            }
            let path = (directory as NSString).appendingPathComponent(name)
            var status = stat()
            guard stat(path, &status) == 0 else {
                result.failures.append(IngestFailure(path: path, reason: statFailure(errno)))
                continue
            }
            if isDirectory(status) {
                let id = identity(status)
                if let ancestor = ancestors[id] {
                    result.failures.append(IngestFailure(path: path, reason: IngestError.symlinkLoop(target: ancestor).description))
                    continue
                }
                if let confinement, !confinement.allows(path) {
                    result.failures.append(IngestFailure(path: path, reason: IngestError.outsideRoots.description))
                    continue
                }
                var deeper = ancestors
                deeper[id] = path
                walk(path, identity: id, ancestors: deeper, walked: &walked, confinement: confinement, into: &result)
            } else if imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                result.files.append(path)
            } else {
                result.skipped += 1
            }
        }
    }

    private static func isDirectory(_ status: stat) -> Bool {
        (status.st_mode & S_IFMT) == S_IFDIR
    }

    private static func identity(_ status: stat) -> DirectoryIdentity {
        DirectoryIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    private static func statFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: return IngestError.notFound.description
        case ELOOP: return IngestError.symlinkLoop(target: "itself").description
        default: return IngestError.unreadable(reason: String(cString: strerror(code)).lowercased()).description
        }
    }
}
