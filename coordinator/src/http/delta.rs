//! What changed between two JSON documents, so a live page is sent its first state whole and
//! then only the changes (an idle fleet changes a few numbers a second, not its 20 KB).
//!
//! A change is `[path, value]` (set the value at the path) or `[path]` (delete the key at the
//! path); a path is the object keys and array indexes from the root. Objects are compared key
//! by key, arrays of equal length element by element; an array whose length changed, or
//! whose changes would be larger than itself, is sent whole. `web/dashboard.js` applies them.

use serde_json::{json, Map, Value};

/// The changes that turn `old` into `new`, in document order; empty when they are equal.
pub fn diff(old: &Value, new: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    walk(old, new, &mut Vec::new(), &mut out);
    out
}

fn walk(old: &Value, new: &Value, path: &mut Vec<Value>, out: &mut Vec<Value>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => objects(a, b, path, out),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            let mut inner = Vec::new();
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(json!(i));
                walk(x, y, path, &mut inner);
                path.pop();
            }
            if encoded_len(&inner) < encoded_len(new) {
                out.extend(inner);
            } else {
                out.push(json!([path.clone(), new]));
            }
        }
        _ => out.push(json!([path.clone(), new])),
    }
}

fn objects(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    path: &mut Vec<Value>,
    out: &mut Vec<Value>,
) {
    for (k, y) in b {
        path.push(json!(k));
        match a.get(k) {
            Some(x) => walk(x, y, path, out),
            None => out.push(json!([path.clone(), y])),
        }
        path.pop();
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        path.push(json!(k));
        out.push(json!([path.clone()]));
        path.pop();
    }
}

/// Bytes of `v` as JSON (what a change list or a value costs on the stream).
pub fn encoded_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The page's side (`applyDelta` in `web/dashboard.js`), to check the round trip.
    fn apply(doc: &mut Value, changes: &[Value]) {
        for change in changes {
            let path = change[0].as_array().unwrap();
            if path.is_empty() {
                *doc = change[1].clone();
                continue;
            }
            let mut at = &mut *doc;
            for step in &path[..path.len() - 1] {
                at = match step {
                    Value::String(k) => &mut at[k.as_str()],
                    Value::Number(i) => &mut at[i.as_u64().unwrap() as usize],
                    _ => unreachable!(),
                };
            }
            let last = &path[path.len() - 1];
            match (change.get(1), last) {
                (Some(v), Value::String(k)) => at[k.as_str()] = v.clone(),
                (Some(v), Value::Number(i)) => at[i.as_u64().unwrap() as usize] = v.clone(),
                (None, Value::String(k)) => {
                    at.as_object_mut().unwrap().remove(k);
                }
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn only_what_changed_is_sent() {
        let old = json!({"now_ms": 1, "sites": [{"id": "a", "seen": 1}, {"id": "b", "seen": 1}],
                         "grades": {"A": 1, "B": 2}, "alerts": []});
        let new = json!({"now_ms": 2, "sites": [{"id": "a", "seen": 1}, {"id": "b", "seen": 2}],
                         "grades": {"A": 1, "C": 1}, "alerts": [{"site": "b"}]});
        assert_eq!(
            diff(&old, &new),
            vec![
                json!([["alerts"], [{"site": "b"}]]),
                json!([["grades", "C"], 1]),
                json!([["grades", "B"]]),
                json!([["now_ms"], 2]),
                json!([["sites", 1, "seen"], 2]),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn an_array_that_changed_everywhere_is_sent_whole() {
        let old = json!({"rows": [1, 2, 3, 4]});
        let new = json!({"rows": [5, 6, 7, 8]});
        assert_eq!(diff(&old, &new), vec![json!([["rows"], [5, 6, 7, 8]])]);
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..5).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn applying_the_changes_gives_the_new_document(old in value(), new in value()) {
            let mut doc = old.clone();
            apply(&mut doc, &diff(&old, &new));
            prop_assert_eq!(doc, new);
        }
    }
}
