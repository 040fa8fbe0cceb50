import Foundation

/// Where the embedded store lives: `--store DIR`, else `LOOKALIKE_STORE`, else
/// `$XDG_DATA_HOME/lookalike/store` (by default `~/.local/share/lookalike/store`).
public enum StoreLocation {
    public static func resolve(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let explicit, !explicit.isEmpty { return URL(fileURLWithPath: explicit, isDirectory: true) }
        if let path = environment["LOOKALIKE_STORE"], !path.isEmpty { return URL(fileURLWithPath: path, isDirectory: true) }
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return URL(fileURLWithPath: data, isDirectory: true).appendingPathComponent("lookalike/store", isDirectory: true)
    }
}
