/// Groups that grow by joining two members (union-find with path compression): what pairs of
/// "alike" marks come to. Each group is named by its smallest member.
struct UnionFind {
    private var parent: [String: String] = [:]

    var members: Dictionary<String, String>.Keys { parent.keys }

    mutating func add(_ member: String) {
        if parent[member] == nil { parent[member] = member }
    }

    /// The name of `member`'s group (itself when it was never joined or added).
    mutating func root(_ member: String) -> String {
        var top = member
        while let up = parent[top], up != top { top = up }
        var walk = member
        while let up = parent[walk], up != top {
            parent[walk] = top
            walk = up
        }
        return top
    }

    mutating func join(_ a: String, _ b: String) {
        add(a)
        add(b)
        let (ra, rb) = (root(a), root(b))
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }
}
