import ArgumentParser
import Foundation
import Lookalike

struct FeedbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feedback",
        abstract: "Mark hits of a search relevant or not, so later searches near the same query use the marks.",
        discussion: """
            The query is given as to `search` (an image, or --item). Each mark is kept with the query's \
            vector; a later search whose query is a near-copy of it (by the model's duplicate threshold) \
            moves towards the items marked relevant and away from those marked not relevant, which go to \
            the end of its list. --forget drops the marks of --model (all models with --all-models).
            """
    )

    @Argument(help: "The query image of the search the marks are for.")
    var image: String?

    @Option(help: ArgumentHelp("The search's query was this stored item.", valueName: "id"))
    var item: String?

    @Option(help: ArgumentHelp("A hit that answered the query well (repeatable).", valueName: "id"))
    var relevant: [String] = []

    @Option(name: .customLong("not-relevant"), help: ArgumentHelp("A hit that did not (repeatable).", valueName: "id"))
    var notRelevant: [String] = []

    @Option(help: ArgumentHelp("A hit that was opened (weak evidence of relevance; repeatable).", valueName: "id"))
    var click: [String] = []

    @Option(help: "The model the search used (default: the store's default model).")
    var model: String?

    @Flag(help: "Forget the marks given with --model instead of adding any.")
    var forget = false

    @Flag(name: .customLong("all-models"), help: "With --forget: the marks of every model.")
    var allModels = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if forget {
            if image != nil || item != nil || !(relevant + notRelevant + click).isEmpty {
                throw ValidationError("--forget takes no query and no marks")
            }
            return
        }
        if allModels { throw ValidationError("--all-models goes with --forget") }
        guard (image == nil) != (item == nil) else { throw ValidationError("give the search's query: an image or --item ID") }
        guard !(relevant + notRelevant + click).isEmpty else { throw ValidationError("give at least one --relevant, --not-relevant or --click") }
    }

    func run() throws {
        do {
            let engine = try storeOptions.engine(createStore: false)
            if forget {
                let count = try engine.forgetFeedback(model: allModels ? nil : try model ?? engine.defaultModel())
                print("forgot \(count) mark\(count == 1 ? "" : "s")")
                return
            }
            let query: Query = image.map { .image(path: $0) } ?? .item(item ?? "")
            let marks = relevant.map { (id: $0, mark: Feedback.Mark.relevant) } + notRelevant.map { (id: $0, mark: .notRelevant) }
                + click.map { (id: $0, mark: .click) }
            let searched = try model ?? engine.defaultModel()
            let count = try engine.recordFeedback(query, model: searched, marks: marks)
            print("recorded \(count) mark\(count == 1 ? "" : "s") (model \(searched))")
        } catch {
            throw fail(error)
        }
    }
}
