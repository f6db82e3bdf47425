//! The integer side of an exported graph: the `Shape → Gather → Unsqueeze → Concat → Slice →
//! Cast` chains that exporters write to compute a `Resize`'s target size or a `Reshape`'s
//! shape at run time. Values are small 0-D or 1-D integer tensors.

use super::values::{axis_of, Op, Value};
use std::rc::Rc;

/// An integer argument: its dimensions and values.
type Ints<'a> = (&'a [usize], &'a [i64]);

/// The integers of argument `i` (`None` when absent).
fn ints_arg(args: &[Option<Rc<Value>>], i: usize) -> Result<Option<Ints<'_>>, String> {
    match args.get(i).and_then(|a| a.as_deref()) {
        None => Ok(None),
        Some(Value::I(s, v)) => Ok(Some((s.as_slice(), v.as_slice()))),
        Some(Value::F(t)) if t.len() == 0 => Ok(None),
        Some(Value::F(_)) => Err(format!("input {i} must be integers")),
    }
}

/// Argument `i`'s integers, required.
fn need(args: &[Option<Rc<Value>>], i: usize) -> Result<Ints<'_>, String> {
    ints_arg(args, i)?.ok_or_else(|| format!("input {i} is missing"))
}

/// Applies an integer operator.
pub(crate) fn apply(op: &Op, args: &[Option<Rc<Value>>]) -> Result<Value, String> {
    match op {
        Op::Shape => {
            let dims = match args.first().and_then(|a| a.as_deref()).ok_or("no input")? {
                Value::F(t) => t.shape.clone(),
                Value::I(s, _) => s.clone(),
            };
            Ok(Value::I(vec![dims.len()], dims.iter().map(|&d| d as i64).collect()))
        }
        Op::Gather(axis) => gather(args, *axis),
        Op::Unsqueeze(axes) => {
            let (shape, v) = need(args, 0)?;
            let axes = match ints_arg(args, 1)? {
                Some((_, a)) => a.to_vec(),
                None => axes.clone(),
            };
            let rank = shape.len() + axes.len();
            let mut norm = axes.iter().map(|&a| axis_of(a, rank)).collect::<Result<Vec<_>, _>>()?;
            norm.sort_unstable();
            let mut out = shape.to_vec();
            for a in norm {
                out.insert(a.min(out.len()), 1);
            }
            Ok(Value::I(out, v.to_vec()))
        }
        Op::Concat(_) => {
            let mut v = Vec::new();
            for i in 0..args.len() {
                v.extend_from_slice(need(args, i)?.1);
            }
            Ok(Value::I(vec![v.len()], v))
        }
        Op::Slice => slice(args),
        Op::CastInt => {
            let (s, v) = need(args, 0)?;
            Ok(Value::I(s.to_vec(), v.to_vec()))
        }
        Op::Reshape => {
            let (s, v) = need(args, 0)?;
            let shape = reshape_target(s, args)?;
            Ok(Value::I(shape, v.to_vec()))
        }
        _ => Err("this operator needs float tensors".into()),
    }
}

/// `Gather` along axis 0 of a 1-D integer tensor.
fn gather(args: &[Option<Rc<Value>>], axis: i64) -> Result<Value, String> {
    let (shape, data) = need(args, 0)?;
    let (ishape, idx) = need(args, 1)?;
    if shape.len() != 1 || axis_of(axis, 1)? != 0 {
        return Err("Gather is supported on 1-D integers only".into());
    }
    let pick = |i: i64| -> Result<i64, String> {
        let j = if i < 0 { i + data.len() as i64 } else { i };
        usize::try_from(j)
            .ok()
            .and_then(|j| data.get(j).copied())
            .ok_or_else(|| format!("Gather index {i} is out of range"))
    };
    Ok(Value::I(ishape.to_vec(), idx.iter().map(|&i| pick(i)).collect::<Result<_, _>>()?))
}

/// `Slice` of a 1-D integer tensor (starts, ends, optional axes and steps; ends clamped).
fn slice(args: &[Option<Rc<Value>>]) -> Result<Value, String> {
    let (shape, data) = need(args, 0)?;
    let (starts, ends) = (need(args, 1)?.1, need(args, 2)?.1);
    if shape.len() != 1 || starts.len() != 1 || ends.len() != 1 {
        return Err("Slice is supported on 1-D integers only".into());
    }
    if let Some((_, axes)) = ints_arg(args, 3)? {
        if axes.iter().any(|&a| a != 0 && a != -1) {
            return Err(format!("Slice axes {axes:?} on a 1-D tensor"));
        }
    }
    if let Some((_, steps)) = ints_arg(args, 4)? {
        if steps != [1] {
            return Err(format!("Slice steps {steps:?} are not supported"));
        }
    }
    let n = data.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
    let (s, e) = (clamp(starts[0]), clamp(ends[0]));
    let v = if s < e { data[s..e].to_vec() } else { Vec::new() };
    Ok(Value::I(vec![v.len()], v))
}

/// The shape a `Reshape` produces from `input` and its second argument (0 copies a
/// dimension, -1 takes what is left).
pub(crate) fn reshape_target(input: &[usize], args: &[Option<Rc<Value>>]) -> Result<Vec<usize>, String> {
    let (_, want) = need(args, 1)?;
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(want.len());
    let mut infer = None;
    for (i, &d) in want.iter().enumerate() {
        out.push(match d {
            0 => *input.get(i).ok_or("Reshape copies a dimension the input lacks")?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            d if d > 0 => d as usize,
            d => return Err(format!("Reshape to dimension {d}")),
        });
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("Reshape of {input:?} to {want:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("Reshape of {input:?} to {want:?} changes the element count"));
    }
    Ok(out)
}

/// A 4-D `Resize`'s output height and width, from `sizes` (fourth argument) or `scales`
/// (third); batch and channels must stay.
pub(crate) fn resize_target(shape: &[usize], args: &[Option<Rc<Value>>]) -> Result<(usize, usize), String> {
    if let Some((_, sizes)) = ints_arg(args, 3)?.filter(|(_, v)| !v.is_empty()) {
        return match sizes {
            [n, c, h, w] if *n == shape[0] as i64 && *c == shape[1] as i64 && *h > 0 && *w > 0 => {
                Ok((*h as usize, *w as usize))
            }
            _ => Err(format!("Resize sizes {sizes:?} for shape {shape:?}")),
        };
    }
    let scales = match args.get(2).and_then(|a| a.as_deref()) {
        Some(Value::F(t)) if t.data.len() == 4 => t.data.clone(),
        // `Upsample` (opset 9) carries its scales as the second input.
        _ => match args.get(1).and_then(|a| a.as_deref()) {
            Some(Value::F(t)) if t.data.len() == 4 => t.data.clone(),
            _ => return Err("Resize has neither sizes nor scales".into()),
        },
    };
    if scales[0] != 1.0 || scales[1] != 1.0 || !(scales[2] > 0.0 && scales[3] > 0.0) {
        return Err(format!("Resize scales {scales:?}"));
    }
    Ok(((shape[2] as f32 * scales[2]) as usize, (shape[3] as f32 * scales[3]) as usize))
}
