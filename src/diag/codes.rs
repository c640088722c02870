//! The stable diagnostic codes. A code never changes meaning once published; `kqlc explain
//! CODE` prints the explanation.
//!
//! Letters: `L` loading a rule file, `P` parsing its query, `N` normalizing it (notes on
//! meaning), `U` what the detection IR cannot express, `T` what a target cannot carry over
//! exactly, `X` internal errors.

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $summary:literal, $explain:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable identifier, e.g. `P001`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $id,)* }
            }

            /// One line: what the code is about.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// What it means, why, and what to do.
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $explain,)* }
            }

            pub fn from_id(id: &str) -> Option<Code> {
                Self::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(id))
            }
        }
    };
}

codes! {
    ReadFailed = "L001", "the file could not be read",
        "The file does not exist, is a directory, or cannot be read (permissions). Check the path.";
    NotUtf8 = "L002", "the file is not UTF-8 text",
        "kqlc reads rule files as UTF-8. The message gives the offset of the first invalid byte. \
         Re-save the file as UTF-8, or check that it is a rule file at all.";
    YamlSyntax = "L003", "the YAML is malformed",
        "The YAML parser stopped at the position shown. A common cause in Sentinel rules is a \
         `query:` written without a block scalar (`query: |`) so that a `:` in the query starts a \
         new key.";
    JsonSyntax = "L004", "the JSON is malformed",
        "The JSON parser stopped at the position shown. ARM templates exported from Sentinel are \
         JSON; check for a trailing comma or an unescaped quote.";
    MissingQuery = "L005", "the rule has no query",
        "A Sentinel rule needs a `query` field (YAML) or `properties.query` (ARM) holding the KQL \
         text. The message lists the fields that were found.";
    UnknownFormat = "L006", "the file type is not one kqlc reads",
        "kqlc reads `.yaml`/`.yml` (Sentinel analytics rules and hunting queries), `.json` (ARM \
         templates exported from a workspace) and `.kql` (a bare query).";
    NoRules = "L007", "the JSON holds no Sentinel rule",
        "An ARM template is read for resources of type `.../alertRules`. This file has none.";
    InvalidField = "L008", "a metadata field has an unexpected value",
        "A rule field such as `severity`, `queryFrequency` or `triggerThreshold` has a value of the \
         wrong shape. The rule is still converted; the field is treated as absent.";
    SyntaxError = "P001", "the query is not valid KQL",
        "The query does not follow KQL syntax at the position shown; the message says what was \
         expected there. kqlc's grammar accepts what Microsoft's Kusto parser accepts.";
    UnterminatedString = "P002", "a string literal is not closed",
        "KQL strings end on the line where they start. Close the quote, or use a multi-line \
         string literal: ```...```.";
    TooDeep = "P003", "the query nests too deeply",
        "Brackets nest more than 40 levels, or one expression chains more than 100 operators. \
         Real rules stay far below (the deepest in the public corpus nests 13 brackets). The limit \
         keeps the parser's stack bounded on any input.";
    TooLarge = "P004", "the query is too large",
        "Queries above 1 MiB are refused. Sentinel itself limits analytics-rule queries to \
         10,000 characters.";
    InvalidLiteral = "P005", "a literal has an invalid value",
        "A literal is well-formed but its value is not valid: a number that does not fit a long, \
         `long(x)` with a non-number, an invalid escape sequence such as `\\d` in a string (write \
         `\\\\d`, or use a verbatim string `@\"\\d\"`).";
    EmptyQuery = "P006", "the query is empty",
        "The query holds only whitespace and comments.";
    NamedPredicate = "N001", "`where Name = value` does not compare",
        "Kusto reads `where IsBillable = true` as the value `true` named `IsBillable`, not as a \
         comparison: the filter keeps every row (or none, for `false`). kqlc translates what Kusto \
         does and says so; write `==` to compare.";
    SeveralResults = "N002", "the query returns several results",
        "A query with several result statements (separated by `;`) returns several tables. A \
         detection has one result: kqlc translates the last statement.";
    NoResult = "N003", "the query returns nothing",
        "The query only defines names with `let` and has no result statement.";
    UnboundParameter = "N004", "a query parameter has no value",
        "`declare query_parameters(...)` names a parameter without a default value; its value \
         is given when the query runs, so kqlc cannot know it.";
    UnknownSubqueryColumn = "N005", "cannot tell the column of a sub-query",
        "`x in (T | ...)` compares with the single column the sub-query returns; kqlc could not \
         tell which column that is (end the sub-query with `project Column` or `distinct Column`).";
    CrossDatabase = "N006", "a table from another database",
        "`database('x').T` reads another Log Analytics workspace or database; it is translated as \
         the table `T`.";
    PresentationDropped = "N007", "a presentation operator was left out",
        "`render` only changes how results are drawn, not which rows a detection finds.";
    ClientParameter = "N008", "a query template placeholder",
        "`{name}` is filled in by the tool that runs the query (for example msticpy's query \
         templates); kqlc cannot know its value.";
    LetShadowedByColumn = "N009", "a `let` name is also a column",
        "Inside an operator, Kusto resolves a name to the column of the input table when there \
         is one, even if a `let` defines the same name. kqlc knows the columns of the tables in \
         its mapping (targets/mappings.yaml) and reads the column there; for other tables it \
         cannot know, and uses the `let`. Rename the `let` to remove the doubt.";
    UnsupportedOperator = "U001", "an operator the detection IR cannot express",
        "The operator (for example `make-series`, `evaluate` plugins, `mv-apply`, `scan`) is kept \
         as an opaque step: the KQL target prints it unchanged, other targets report that they \
         cannot translate it.";
    UnsupportedSource = "U002", "a source the detection IR cannot express",
        "The rows come from something the IR does not model (a table pattern, `range`, `print`, \
         `search`, `find`).";
    UnsupportedExpression = "U003", "an expression the detection IR cannot express",
        "A part of an expression (for example `Column:value` outside `search`, or a tuple \
         assignment) is kept opaque.";
    UnresolvedFunction = "U004", "a function defined outside the query",
        "The query calls a function it does not define: a Sentinel workspace function (saved \
         query or parser). Give its definition with `--functions FILE` (KQL `let` statements or \
         `.create-or-alter function` commands); until then it stays an unresolved node.";
    WriteFailed = "L009", "an output file could not be written",
        "`--out DIR` could not create a directory or write a file (permissions, disk full).";
    MatchesMore = "T001", "the translation matches more events",
        "The target has no exact equivalent of a KQL test, and the closest one it has also \
         matches events the KQL would not (for example `has`, a whole-term match, written as a \
         substring match). The output says where; review the rule or narrow it by hand.";
    MatchesFewer = "T002", "the translation matches fewer events",
        "The closest test the target has misses events the KQL would match. The output says where.";
    NotTranslated = "T003", "part of the rule could not be carried over",
        "A construct the target cannot express (a computed column in Sigma, a join the target \
         cannot run, a workspace function) was left out or replaced; the output says what and \
         what was done instead.";
    UnmappedField = "T004", "a field has no known name in the target",
        "The embedded mapping does not know this column for this table, so the Sentinel name is \
         kept. Give the target's name with `--mapping FILE` (see targets/mappings.yaml).";
    NoEquivalentField = "T005", "the target has no such field",
        "The mapping says the target's data has no equivalent of this column (for example \
         Sentinel's `Account` in the sign-in tables). The condition on it cannot be kept.";
    UnmappedSource = "T006", "the table has no known source in the target",
        "The embedded mapping does not say which Sigma logsource, Splunk sourcetype or Elastic \
         index holds this table's events; a placeholder is written. Give it with `--mapping FILE`.";
    CaseSemantics = "T007", "case sensitivity differs",
        "The target compares case differently from the KQL operator (for example Splunk's search \
         is case-insensitive where KQL's `==` is not) and the output could not fully make up for \
         it.";
    TargetLimit = "T008", "a target limit changes the result",
        "The target runs the construct with a limit KQL does not have (for example Splunk's \
         subsearch and join row limits), so results can differ on large data.";
    SourceNote = "T009", "a note on how a table is mapped",
        "The mapping records a caveat for this table (for example CommonSecurityLog mapped as \
         Cisco ASA only).";
    Untranslatable = "T010", "the rule cannot be translated to this target",
        "The rule depends on something this target cannot express at all (an unresolved \
         workspace function, an operator kqlc does not model); nothing usable could be written.";
    Internal = "X001", "internal error",
        "kqlc hit a bug while processing this rule. The other rules were still processed. \
         Please report it with the rule that triggered it.";
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(
                seen.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
            assert_eq!(Code::from_id(code.as_str()), Some(*code));
            assert!(!code.explanation().is_empty());
        }
    }
}
