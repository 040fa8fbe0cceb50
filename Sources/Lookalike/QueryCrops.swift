import Embedding
import Imaging

/// Query-side crops for copy detection. A copy pasted into a larger picture (padded onto a
/// canvas, letterboxed, a screenshot of a web page or a phone app around it) is often missed by
/// its whole image, whose vector is mostly the frame. When the whole query finds no copy (no hit
/// at or above the model's copy threshold), crops of the query search too, and each item keeps the
/// best of its whole-image score and its best crop's score less `margin`. A query that finds a
/// copy whole costs nothing more.
enum QueryCrops {
    /// The crops, as fractions of the query (after its region, if it has one): half and 70% of its
    /// width and its height, each at the nine places of a 3 x 3 grid (start, centred, end along
    /// each side). Chosen by `scripts/fit_crops.py` on one half of the `framed` and `copies` sets' photos.
    static let regions: [ImageRegion] = [0.5, 0.7].flatMap { share in
        [0.0, 0.5, 1.0].flatMap { y in
            [0.0, 0.5, 1.0].compactMap { x in try? ImageRegion(x: (1 - share) * x, y: (1 - share) * y, width: share, height: share) }
        }
    }

    /// How much a crop's score counts less than the whole query's: crops of a query that has no
    /// copy stored still find their nearest images, and the margin keeps those below the copy
    /// threshold. Fitted with the layout (docs/QUALITY.md, "Framed copies").
    static let margin: Float = 0.06

    /// Whether a search of `manifest`'s model tries crops when it does not say: the copy detectors
    /// (the models the crops were measured for).
    static func byDefault(_ manifest: ModelManifest) -> Bool {
        ["sscd", "sscd-distilled"].contains(manifest.name)
    }

    /// Whether the best whole-image score leaves the query without a copy: below the model's copy
    /// threshold, or any score for a model without one.
    static func needed(best: Float?, manifest: ModelManifest) -> Bool {
        guard let threshold = manifest.duplicateThreshold else { return true }
        return (best ?? -.infinity) < threshold
    }

    /// The candidates of the whole query joined by those of its crops (`crops[i]` found by
    /// `regions[i]`): each item keeps its best score, a crop's less the margin, and a crop that
    /// gave it is named in `queryPart`. Best first, at most `k`.
    static func merged(_ whole: [Candidate], crops: [[Candidate]], k: Int) -> [Candidate] {
        Candidate.bestPerItem(whole + zip(regions, crops).flatMap { region, found in
            found.map { candidate in
                var cropped = candidate
                cropped.score -= margin
                cropped.queryPart = region
                return cropped
            }
        }, k: k)
    }
}
