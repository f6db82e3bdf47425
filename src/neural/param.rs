//! The text half of an ncnn model (`.param`): magic `7767517`, `layer_count blob_count`, then
//! one line per layer — `Type name n_in n_out in_blobs... out_blobs... key=value...` — where a
//! value is an integer, a float, or (key `-233KK`) an array `N,v1,...,vN` for key `KK`.
//! Every malformed line is an error naming the line.

use std::collections::BTreeMap;

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
    Array(Vec<f64>),
}

/// One layer line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LayerLine {
    /// 1-based line number, for messages.
    pub line: usize,
    pub kind: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub params: BTreeMap<i32, Value>,
}

impl LayerLine {
    /// Integer parameter `key`, or `default` when absent; an error if it is not an integer.
    pub(crate) fn int(&self, key: i32, default: i64) -> Result<i64, String> {
        match self.params.get(&key) {
            None => Ok(default),
            Some(Value::Int(v)) => Ok(*v),
            Some(v) => Err(format!(
                "line {}: {} {}: parameter {key} must be an integer, not {v:?}",
                self.line, self.kind, self.name
            )),
        }
    }
    /// Float parameter `key` (integers are accepted), or `default`.
    pub(crate) fn float(&self, key: i32, default: f64) -> Result<f64, String> {
        match self.params.get(&key) {
            None => Ok(default),
            Some(Value::Int(v)) => Ok(*v as f64),
            Some(Value::Float(v)) => Ok(*v),
            Some(v) => Err(format!(
                "line {}: {} {}: parameter {key} must be a number, not {v:?}",
                self.line, self.kind, self.name
            )),
        }
    }
    /// Array parameter `key`, empty when absent.
    pub(crate) fn array(&self, key: i32) -> Result<Vec<f64>, String> {
        match self.params.get(&key) {
            None => Ok(Vec::new()),
            Some(Value::Array(v)) => Ok(v.clone()),
            Some(v) => Err(format!(
                "line {}: {} {}: parameter {key} must be an array, not {v:?}",
                self.line, self.kind, self.name
            )),
        }
    }
    /// Fails if the layer has parameters other than `known` (a feature we would silently
    /// ignore and compute wrongly).
    pub(crate) fn only(&self, known: &[i32]) -> Result<(), String> {
        match self.params.keys().find(|k| !known.contains(k)) {
            Some(k) => Err(format!(
                "line {}: {} {}: parameter {k} is not supported (supported: {known:?})",
                self.line, self.kind, self.name
            )),
            None => Ok(()),
        }
    }
}

/// Most layers and blobs a model may declare (the shipped ones have 8 and 40).
const MAX_LAYERS: usize = 4096;
/// Longest array parameter.
const MAX_ARRAY: usize = 4096;

/// Parses a `.param` file's text.
pub(crate) fn parse(text: &str) -> Result<Vec<LayerLine>, String> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, "7767517")) => {}
        Some((n, l)) => return Err(format!("line {n}: not an ncnn .param file (magic 7767517 expected, found {l:?})")),
        None => return Err("empty .param file".into()),
    }
    let (n, counts) = lines.next().ok_or("no layer and blob counts after the magic")?;
    let counts: Vec<usize> = counts
        .split_whitespace()
        .map(|c| c.parse().map_err(|_| format!("line {n}: bad count {c:?}")))
        .collect::<Result<_, _>>()?;
    let [layers, _blobs] = counts[..] else { return Err(format!("line {n}: expected `layer_count blob_count`")) };
    if layers == 0 || layers > MAX_LAYERS {
        return Err(format!("line {n}: {layers} layers (1..={MAX_LAYERS} supported)"));
    }
    let out: Vec<LayerLine> = lines.map(|(n, l)| layer(n, l)).collect::<Result<_, _>>()?;
    if out.len() != layers {
        return Err(format!("the header declares {layers} layers, the file has {}", out.len()));
    }
    Ok(out)
}

fn layer(n: usize, l: &str) -> Result<LayerLine, String> {
    let mut f = l.split_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| format!("line {n}: missing {what}"));
    let kind = next("layer type")?.to_string();
    let name = next("layer name")?.to_string();
    let count =
        |s: &str| s.parse::<usize>().ok().filter(|&c| c <= 64).ok_or_else(|| format!("line {n}: bad blob count {s:?}"));
    let n_in = count(next("input count")?)?;
    let n_out = count(next("output count")?)?;
    let inputs = (0..n_in).map(|_| next("input blob").map(String::from)).collect::<Result<_, _>>()?;
    let outputs = (0..n_out).map(|_| next("output blob").map(String::from)).collect::<Result<_, _>>()?;
    let mut params = BTreeMap::new();
    for kv in f {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("line {n}: {kv:?} is not key=value"))?;
        let k: i32 = k.parse().map_err(|_| format!("line {n}: bad key {k:?}"))?;
        let (key, value) = if k <= -23300 { (-(k + 23300), array(n, v)?) } else { (k, scalar(n, v)?) };
        if params.insert(key, value).is_some() {
            return Err(format!("line {n}: parameter {key} given twice"));
        }
    }
    Ok(LayerLine { line: n, kind, name, inputs, outputs, params })
}

fn scalar(n: usize, v: &str) -> Result<Value, String> {
    if let Ok(i) = v.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Value::Float(x)),
        _ => Err(format!("line {n}: bad value {v:?}")),
    }
}

fn array(n: usize, v: &str) -> Result<Value, String> {
    let mut it = v.split(',');
    let len: usize = it.next().and_then(|c| c.parse().ok()).ok_or_else(|| format!("line {n}: bad array {v:?}"))?;
    if len > MAX_ARRAY {
        return Err(format!("line {n}: array of {len} values (at most {MAX_ARRAY})"));
    }
    let vals: Vec<f64> = it
        .map(|x| x.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("line {n}: bad array {v:?}"))?;
    if vals.len() != len {
        return Err(format!("line {n}: array declares {len} values, has {}", vals.len()));
    }
    Ok(Value::Array(vals))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lines_keys_and_arrays() {
        let p = parse("7767517\n2 2\nInput in 0 1 data 0=16 1=16 2=3\nConvolution c 1 1 data out 0=16 1=3 5=1 6=432 9=2 -23310=1,0.100000\n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].int(0, 0).unwrap(), 16);
        assert_eq!(p[1].array(10).unwrap(), vec![0.1]);
        assert_eq!(p[1].inputs, vec!["data"]);
        assert!(p[1].only(&[0, 1, 5, 6, 9, 10]).is_ok());
        assert!(p[1].only(&[0, 1]).unwrap_err().contains("parameter 5"));
    }
    #[test]
    fn malformed_files_name_the_line() {
        for (text, want) in [
            ("", "empty"),
            ("1234\n", "magic"),
            ("7767517\n2\n", "layer_count"),
            ("7767517\n2 2\nInput in 0 1 data\n", "declares 2 layers"),
            ("7767517\n1 1\nInput in 0 1\n", "line 3: missing output blob"),
            ("7767517\n1 1\nConvolution c 1 1 a b 0=x\n", "line 3: bad value"),
            ("7767517\n1 1\nConvolution c 1 1 a b -23310=3,1,2\n", "declares 3 values"),
            ("7767517\n1 1\nConvolution c 1 1 a b 0=1 0=2\n", "given twice"),
            ("7767517\n1 1\nConvolution c 99 1 a b\n", "bad blob count"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
