//! The model: a lexicon sentiment scorer in the spirit of VADER, small enough to read in one sitting. Each
//! known word has a valence; intensifiers ("very") scale the next sentiment word, negators ("not", "don't")
//! flip and damp a sentiment word within the next three words of the same clause, and "but" shifts weight to
//! the clause after it. The sum is squashed into `-1..=1` and labelled. Deterministic: the same text always
//! gets the same prediction, so tests and canary comparisons can assert exact values.

use serde::Serialize;

/// How many words after a negator it still applies to ("not a very good film").
const NEGATION_SCOPE: usize = 3;
/// A negated word counts against its valence, but less: "not good" is milder than "bad" (VADER uses -0.74).
const NEGATION_FACTOR: f64 = -0.5;
/// "but" halves what came before and strengthens what follows ("good but terrible service" is negative).
const BEFORE_BUT: f64 = 0.5;
const AFTER_BUT: f64 = 1.5;
/// Squashing constant: `raw / sqrt(raw² + ALPHA)`; with 5, a single "good" (valence 2) scores 0.67.
const ALPHA: f64 = 5.0;
/// Scores within this distance of zero are neutral.
const NEUTRAL_BAND: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Positive,
    Negative,
    Neutral,
}

/// One instance's prediction, serialised as `{"label": "positive", "score": 0.67}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    pub label: Label,
    /// Compound score in `-1..=1`, rounded to two decimals: below zero is negative sentiment.
    pub score: f64,
}

/// Scores one text.
pub fn predict(text: &str) -> Prediction {
    let raw = raw_score(text);
    let compound = raw / (raw * raw + ALPHA).sqrt();
    let label = if compound >= NEUTRAL_BAND {
        Label::Positive
    } else if compound <= -NEUTRAL_BAND {
        Label::Negative
    } else {
        Label::Neutral
    };
    // `+ 0.0` turns a rounded `-0.0` into `0.0`, so neutral texts print as 0.
    Prediction { label, score: (compound * 100.0).round() / 100.0 + 0.0 }
}

/// Sum of the valences of the sentiment words, after intensifiers, negation and "but".
fn raw_score(text: &str) -> f64 {
    let mut total = 0.0;
    let mut clause_weight = 1.0;
    let mut boost = 1.0;
    let mut negation_left = 0;
    for token in tokens(text) {
        let word = match token {
            Token::Word(word) => word,
            // A clause boundary ends negation and intensification: "not bad. good" has a positive second half.
            Token::Break => {
                negation_left = 0;
                boost = 1.0;
                continue;
            }
        };
        if word == "but" {
            total *= BEFORE_BUT;
            clause_weight = AFTER_BUT;
            negation_left = 0;
            boost = 1.0;
        } else if is_negator(&word) {
            negation_left = NEGATION_SCOPE;
        } else if let Some(factor) = intensity(&word) {
            // Intensifiers sit inside the negated phrase ("not at all very good"), so they use up no scope.
            boost *= factor;
        } else if let Some(valence) = valence(&word) {
            let negation = if negation_left > 0 { NEGATION_FACTOR } else { 1.0 };
            total += valence * boost * clause_weight * negation;
            negation_left = 0;
            boost = 1.0;
        } else {
            negation_left = negation_left.saturating_sub(1);
            boost = 1.0;
        }
    }
    total
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Break,
}

/// Lowercased words (letters, digits and inner apostrophes, so "don't" stays one word) and clause breaks at
/// sentence punctuation. Typographic apostrophes count as `'`.
fn tokens(text: &str) -> impl Iterator<Item = Token> + '_ {
    let mut chars = text.chars().peekable();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            if matches!(c, '.' | ',' | ';' | ':' | '!' | '?') {
                return Some(Token::Break);
            }
            if !c.is_alphanumeric() {
                continue;
            }
            let mut word: String = c.to_lowercase().collect();
            while let Some(&next) = chars.peek() {
                if next.is_alphanumeric() {
                    word.extend(next.to_lowercase());
                } else if matches!(next, '\'' | '’') {
                    word.push('\'');
                } else {
                    break;
                }
                chars.next();
            }
            // A trailing apostrophe ("students'") is punctuation, not part of the word.
            let trimmed = word.trim_end_matches('\'').len();
            word.truncate(trimmed);
            return Some(Token::Word(word));
        }
    })
}

fn is_negator(word: &str) -> bool {
    matches!(
        word,
        "not" | "no" | "never" | "none" | "nothing" | "nobody" | "neither" | "nor" | "cannot" | "without" | "hardly"
    ) || word.ends_with("n't")
        || matches!(word, "dont" | "doesnt" | "didnt" | "isnt" | "wasnt" | "arent" | "cant" | "wont" | "couldnt")
}

/// Multiplier an intensifier or diminisher applies to the next sentiment word.
fn intensity(word: &str) -> Option<f64> {
    Some(match word {
        "extremely" | "incredibly" => 1.8,
        "very" | "super" | "absolutely" | "really" | "so" | "totally" => 1.5,
        "quite" | "pretty" => 1.2,
        "somewhat" | "fairly" => 0.7,
        "slightly" | "barely" => 0.5,
        _ => return None,
    })
}

/// The lexicon: 3 strong, 2 clear, 1 mild, negative for negative sentiment.
fn valence(word: &str) -> Option<f64> {
    Some(match word {
        "excellent" | "amazing" | "awesome" | "fantastic" | "wonderful" | "love" | "loved" | "loves" | "best"
        | "perfect" | "brilliant" | "superb" | "outstanding" | "delightful" | "great" => 3.0,
        "good" | "nice" | "happy" | "enjoy" | "enjoyed" | "pleasant" | "recommend" | "recommended" | "fun"
        | "beautiful" | "glad" | "impressive" | "helpful" | "reliable" | "friendly" | "thanks" => 2.0,
        "like" | "liked" | "better" | "fine" | "fast" | "easy" | "ok" | "okay" | "decent" | "works" => 1.0,
        "slow" | "wrong" | "problem" | "expensive" | "mediocre" | "meh" | "confusing" => -1.0,
        "bad" | "poor" | "worse" | "dislike" | "boring" | "broken" | "buggy" | "sad" | "angry" | "disappointing"
        | "disappointed" | "annoying" | "ugly" | "fail" | "failed" | "fails" | "crash" | "crashed" => -2.0,
        "terrible" | "awful" | "horrible" | "worst" | "hate" | "hated" | "hates" | "useless" | "disgusting"
        | "garbage" => -3.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples() {
        use Label::*;
        let cases: &[(&str, Label, f64)] = &[
            ("good", Positive, 0.67),
            ("This movie was great!", Positive, 0.8),
            ("GOOD", Positive, 0.67),
            ("terrible", Negative, -0.8),
            ("not good", Negative, -0.41),
            ("not bad", Positive, 0.41),
            ("The service was very good", Positive, 0.8),
            ("not a very good film", Negative, -0.56),
            ("I don't like it", Negative, -0.22),
            ("I don’t like it", Negative, -0.22),
            ("I dont like it", Negative, -0.22),
            ("good, not great", Positive, 0.22),
            ("The food was good but the service was terrible", Negative, -0.84),
            ("not. good", Positive, 0.67),
            ("I love it, the best purchase, excellent", Positive, 0.97),
            ("the table is wooden", Neutral, 0.0),
            ("", Neutral, 0.0),
            ("good bad", Neutral, 0.0),
        ];
        for &(text, label, score) in cases {
            assert_eq!(predict(text), Prediction { label, score }, "text {text:?}");
        }
    }

    #[test]
    fn negation_reaches_three_words() {
        assert_eq!(predict("not at all good").label, Label::Negative);
        assert_eq!(predict("not at all really good").label, Label::Negative);
        assert_eq!(predict("not at all the only good").label, Label::Positive);
    }

    #[test]
    fn tokenizer_keeps_contractions_and_breaks_clauses() {
        let words = |text| {
            tokens(text)
                .map(|token| match token {
                    Token::Word(word) => word,
                    Token::Break => "|".to_owned(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(words("Don't STOP, it's 'fine'!"), ["don't", "stop", "|", "it's", "fine", "|"]);
        assert_eq!(words("students' work"), ["students", "work"]);
        assert_eq!(words("  \t"), Vec::<String>::new());
    }

    #[test]
    fn scores_stay_in_range_and_are_deterministic() {
        let long = "excellent ".repeat(1000);
        let prediction = predict(&long);
        assert_eq!(prediction, Prediction { label: Label::Positive, score: 1.0 });
        assert_eq!(predict(&long), prediction);
        assert_eq!(predict(&"awful ".repeat(1000)).score, -1.0);
    }
}
