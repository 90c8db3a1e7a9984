//! `frozen:` globs over parameter paths: `*` matches within one dot-separated segment, `**`
//! any number of segments, and a pattern also covers everything under the path it names
//! (`backbone` freezes `backbone.conv1.weight`).

use super::optim::Param;

/// Split `params` into those still trained and the keys frozen; a pattern that matches no
/// parameter is an error (a typo would otherwise train what was meant to be frozen).
pub fn freeze(params: Vec<Param>, patterns: &[String]) -> Result<(Vec<Param>, Vec<String>), String> {
    for pattern in patterns {
        if !params.iter().any(|p| covers(pattern, &p.key)) {
            let roots: std::collections::BTreeSet<&str> =
                params.iter().filter_map(|p| p.key.split('.').next()).collect();
            return Err(format!(
                "`frozen: {pattern}` matches no trainable parameter; the top-level paths are {}",
                roots.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let (frozen, kept): (Vec<Param>, Vec<Param>) =
        params.into_iter().partition(|p| patterns.iter().any(|pat| covers(pat, &p.key)));
    Ok((kept, frozen.into_iter().map(|p| p.key).collect()))
}

/// Whether `pattern` names `key` or a path above it.
pub fn covers(pattern: &str, key: &str) -> bool {
    let pat: Vec<&str> = pattern.split('.').collect();
    let segs: Vec<&str> = key.split('.').collect();
    (1..=segs.len()).any(|n| matches(&pat, &segs[..n]))
}

fn matches(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|skip| matches(rest, &segs[skip..])),
        Some((p, rest)) => {
            segs.split_first().is_some_and(|(s, tail)| segment_matches(p, s) && matches(rest, tail))
        }
    }
}

/// `*` within a segment: any run of characters.
fn segment_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|i| text.is_char_boundary(i) && segment_matches(tail, &text[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_cover_segments_prefixes_and_deep_paths() {
        assert!(covers("backbone", "backbone.conv1.weight"));
        assert!(!covers("backbone", "backbone2.weight"));
        assert!(covers("layers.*.attn", "layers.3.attn.in_proj_weight"));
        assert!(!covers("layers.*.attn", "layers.3.ff.weight"));
        assert!(covers("**.bias", "a.b.c.bias"));
        assert!(covers("fc*", "fc1.weight") && covers("fc*", "fc2.bias") && !covers("fc*", "head.weight"));
        assert!(covers("*.weight", "fc1.weight") && !covers("*.weight", "fc1.bias"));
    }

    #[test]
    fn freezing_splits_params_and_refuses_a_pattern_that_matches_nothing() {
        let var = candle_core::Var::new(0f32, &candle_core::Device::Cpu).unwrap();
        let p = |k: &str| Param { key: k.into(), var: var.clone() };
        let params = vec![p("features.0.weight"), p("features.0.bias"), p("head.weight")];
        let (kept, frozen) = freeze(params.clone(), &["features".into()]).unwrap();
        assert_eq!(kept.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["head.weight"]);
        assert_eq!(frozen, ["features.0.weight", "features.0.bias"]);
        let e = freeze(params, &["featurs".into()]).unwrap_err();
        assert_eq!(
            e,
            "`frozen: featurs` matches no trainable parameter; the top-level paths are features, head"
        );
    }
}
