import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Which addresses a URL query may reach: public unicast only. Loopback, private, link-local,
/// shared (CGNAT), multicast, documentation and reserved blocks are refused, IPv4-mapped and
/// NAT64 IPv6 addresses by the IPv4 address they carry. Configured networks are exceptions.
struct AddressPolicy: Sendable {
    /// A CIDR block.
    struct Network: Sendable {
        let bytes: [UInt8]
        let prefix: Int

        init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let address = parts.first, let bytes = AddressPolicy.parse(String(address)) else { return nil }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, (0...(bytes.count * 8)).contains(prefix) else { return nil }
            self.bytes = bytes
            self.prefix = prefix
        }

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for i in 0..<bytes.count where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if address[i] & mask != bytes[i] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    static let refused: [(Network, String)] = [
        ("0.0.0.0/8", "a 'this network' address"), ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"), ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"), ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a protocol-assignment address"), ("192.0.2.0/24", "a documentation address"),
        ("192.168.0.0/16", "a private address"), ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"), ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"), ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"), ("::1/128", "a loopback address"),
        ("100::/64", "a discard address"), ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"), ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"), ("ff00::/8", "a multicast address"),
        ("2002::/16", "a 6to4 address"), ("2001::/32", "a Teredo address"), ("64:ff9b:1::/48", "a local NAT64 address"),
    ].compactMap { text, reason in Network(text).map { ($0, reason) } }

    let exceptions: [Network]
    /// The addresses of this machine's own interfaces: never fetched, exceptions or not (a service
    /// listening on all interfaces would answer a URL naming the machine's public address).
    let own: Set<[UInt8]>

    init(allowing networks: [String] = [], own: Set<[UInt8]> = AddressPolicy.interfaceAddresses()) {
        exceptions = networks.compactMap(Network.init)
        self.own = own
    }

    /// Nil when the address may be reached, else why not (for logs: a client is told only that
    /// the host is not public, whatever the reason, so its answers map nothing).
    func refusal(_ address: [UInt8]) -> String? {
        if own.contains(address) { return "an address of this machine" }
        if exceptions.contains(where: { $0.contains(address) }) { return nil }
        if address.count == 16 {
            // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
            let mapped = address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xFF && address[11] == 0xFF
            let compatible = address[0..<12].allSatisfy { $0 == 0 } && !address[12..<16].allSatisfy { $0 == 0 }
                && address != [UInt8](repeating: 0, count: 15) + [1]
            let nat64 = address[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...]
            if mapped || compatible || nat64 { return refusal(Array(address[12..<16])) }
        }
        return Self.refused.first { $0.0.contains(address) }?.1
    }

    /// The IPv4 and IPv6 addresses of this machine's interfaces (getifaddrs).
    static func interfaceAddresses() -> Set<[UInt8]> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses = Set<[UInt8]>()
        var node = list
        while let entry = node {
            if let address = entry.pointee.ifa_addr.flatMap(bytes) { addresses.insert(address) }
            node = entry.pointee.ifa_next
        }
        return addresses
    }

    /// The address bytes of an IPv4 or IPv6 socket address, nil for another family.
    static func bytes(_ address: UnsafeMutablePointer<sockaddr>) -> [UInt8]? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var raw = v4.pointee.sin_addr
                return withUnsafeBytes(of: &raw) { Array($0) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var raw = v6.pointee.sin6_addr
                return withUnsafeBytes(of: &raw) { Array($0) }
            }
        default:
            return nil
        }
    }

    /// Ports a URL may name: the web's own, and the unprivileged range (below 1024 sit mail, SSH
    /// and the like), less the well-known ports of services that are not web servers but can be
    /// made to act on an HTTP request (databases, caches, remote desktops, the Docker API).
    static func allowsPort(_ port: Int) -> Bool {
        port == 80 || port == 443 || ((1024...65535).contains(port) && !servicePorts.contains(port))
    }

    static let servicePorts: Set<Int> = [1433, 1521, 2049, 2375, 2376, 2379, 3306, 3389, 5432, 5900, 5984, 6379, 8500, 9042,
                                         9092, 9200, 9300, 11211, 27017]

    /// The bytes of an IPv4 or IPv6 literal (brackets allowed), or nil.
    static func parse(_ text: String) -> [UInt8]? {
        var literal = text
        if literal.hasPrefix("[") && literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func text(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = address.count == 4 ? AF_INET : AF_INET6
        _ = address.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Fetches the image a URL query names, guarding against server-side request forgery: http and
/// https only; the host is resolved first and every address it has is checked against the
/// `AddressPolicy` before any connection is made; the connection then goes to the checked address
/// (so a second, different DNS answer cannot slip in); redirects are followed by hand, each new
/// location checked the same way; the body is capped in size and the whole fetch in time.
struct URLFetcher: Sendable {
    static let logger = Logger(label: "lookalike.fetch")
    let policy: AddressPolicy
    let maxBytes: Int
    let maxRedirects: Int
    let timeout: Duration
    /// Resolves a host name to addresses (replaceable in tests).
    var resolve: @Sendable (String) async throws -> [[UInt8]] = URLFetcher.systemResolve

    /// The image at the URL, with `timeout` for the whole fetch (resolving, connecting, every redirect, the
    /// body): a server that trickles its answer cannot hold the request longer.
    func fetch(_ text: String) async throws -> [UInt8] {
        let limit = timeout
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask { try await followRedirects(text) }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let bytes = first else {
                throw APIError(.badGateway, "url_fetch_failed", "fetching the URL took longer than \(limit.components.seconds) s")
            }
            return bytes
        }
    }

    private func followRedirects(_ text: String) async throws -> [UInt8] {
        var current = text
        for _ in 0...maxRedirects {
            let (url, host, pinned) = try await check(current)
            var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
            configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
            if AddressPolicy.parse(host) == nil {
                configuration.dnsOverride = [host: AddressPolicy.text(pinned)]
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let outcome = try await get(url, client: client)
                try await client.shutdown()
                switch outcome {
                case .body(let bytes): return bytes
                case .redirect(let location): current = location
                }
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
        throw APIError(.badGateway, "url_fetch_failed", "more than \(maxRedirects) redirects")
    }

    private enum Outcome { case body([UInt8]), redirect(String) }

    private func get(_ url: URL, client: HTTPClient) async throws -> Outcome {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.headers.add(name: "User-Agent", value: "Lookalike")
        request.headers.add(name: "Accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        } catch {
            // One message whatever failed (refused, reset, timed out, TLS): the difference would
            // tell which ports of a host are open.
            Self.logger.debug("fetching \(url.absoluteString) failed: \(Self.reason(error))")
            throw APIError(.badGateway, "url_fetch_failed", "could not fetch \(url.host ?? "the URL")")
        }
        if (300..<400).contains(Int(response.status.code)), response.status.code != 304 {
            guard let location = response.headers.first(name: "location"),
                  let next = URL(string: location, relativeTo: url)?.absoluteURL.absoluteString
            else {
                throw APIError(.badGateway, "url_fetch_failed", "a redirect without a usable Location")
            }
            return .redirect(next)
        }
        guard response.status == .ok else {
            throw APIError(.badGateway, "url_fetch_failed", "the URL answered \(response.status.code) \(response.status.reasonPhrase)")
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
            throw APIError.tooLarge("the image at the URL is \(length) bytes, over the limit of \(maxBytes)")
        }
        do {
            let body = try await response.body.collect(upTo: maxBytes)
            return .body(Array(body.readableBytesView))
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge("the image at the URL is over the limit of \(maxBytes) bytes")
        } catch {
            throw APIError(.badGateway, "url_fetch_failed", "reading the image failed: \(Self.reason(error))")
        }
    }

    /// Parses and checks one URL; returns it with its host and the address to connect to.
    func check(_ text: String) async throws -> (URL, String, [UInt8]) {
        guard text.count <= 4096, let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw APIError(.badRequest, "bad_url", "not a URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw APIError(.badRequest, "bad_url", "only http and https URLs can be fetched, not \(scheme)")
        }
        guard url.user == nil, url.password == nil else {
            throw APIError(.badRequest, "bad_url", "URLs with credentials are not fetched")
        }
        guard var host = url.host, !host.isEmpty else { throw APIError(.badRequest, "bad_url", "the URL has no host") }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // One answer for every refusal (a port, a private or loopback address, this machine's own):
        // what the server can reach is not told.
        let refused = APIError(.forbidden, "url_not_allowed",
                               "\(host) is not fetched: only public hosts, on port 80, 443 or 1024 and up, are")
        guard AddressPolicy.allowsPort(url.port ?? (scheme == "https" ? 443 : 80)) else { throw refused }
        let addresses: [[UInt8]]
        if let literal = AddressPolicy.parse(host) {
            addresses = [literal]
        } else {
            do {
                addresses = try await resolve(host)
            } catch {
                throw APIError(.badGateway, "url_fetch_failed", "cannot resolve \(host)")
            }
        }
        guard let first = addresses.first else { throw APIError(.badGateway, "url_fetch_failed", "\(host) has no address") }
        for address in addresses {
            if let reason = policy.refusal(address) {
                Self.logger.debug("refused a URL query for \(host): \(reason)")
                throw refused
            }
        }
        return (url, host, first)
    }

    /// getaddrinfo, on NIO's blocking-work pool.
    @Sendable static func systemResolve(_ host: String) async throws -> [[UInt8]] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0 else { throw APIError(.badGateway, "url_fetch_failed", "cannot resolve \(host)") }
            defer { freeaddrinfo(list) }
            var addresses: [[UInt8]] = []
            var node = list
            while let entry = node {
                if let address = entry.pointee.ai_addr.flatMap(AddressPolicy.bytes) { addresses.append(address) }
                node = entry.pointee.ai_next
            }
            var seen = Set<[UInt8]>()
            return addresses.filter { seen.insert($0).inserted }
        }
    }

    private static func reason(_ error: Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: type(of: error))
    }
}
