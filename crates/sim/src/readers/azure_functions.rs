//! The Azure Functions 2019 trace (Shahrad et al., "Serverless in the Wild"), as InVitro samples it: a folder
//! with `invocations.csv` (one row per function: `HashOwner,HashApp,HashFunction,Trigger,<count per minute>...`)
//! and `durations.csv` (`...,percentile_Average_0,_1,_25,_50,_75,_99,_100` in ms, joined on the three hashes).
//! Each function becomes one revision named after the first 8 hex digits of its hash. `memory.csv` is not
//! needed: the cost model prices replica-seconds, not memory.

use std::collections::HashMap;
use std::path::Path;

use super::{ReadError, read_text};
use crate::trace::{Arrivals, RevisionTrace, ServiceTime, Trace};

/// The percentiles of `durations.csv`, in column order.
const PERCENTILES: [(f64, &str); 7] = [
    (0.0, "percentile_Average_0"),
    (0.01, "percentile_Average_1"),
    (0.25, "percentile_Average_25"),
    (0.50, "percentile_Average_50"),
    (0.75, "percentile_Average_75"),
    (0.99, "percentile_Average_99"),
    (1.0, "percentile_Average_100"),
];

pub fn read(folder: &Path) -> Result<Trace, ReadError> {
    let durations_path = folder.join("durations.csv");
    let durations = read_durations(&durations_path, &read_text(&durations_path)?)?;
    let invocations_path = folder.join("invocations.csv");
    read_invocations(&invocations_path, &read_text(&invocations_path)?, &durations)
}

/// Service-time percentiles per `owner,app,function` key.
fn read_durations(path: &Path, text: &str) -> Result<HashMap<String, ServiceTime>, ReadError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines.next().map(|(_, h)| h.trim().split(',').collect()).unwrap_or_default();
    let mut columns = Vec::with_capacity(PERCENTILES.len());
    for (p, name) in PERCENTILES {
        let Some(at) = header.iter().position(|h| *h == name) else {
            return Err(ReadError::parse(path, 1, format!("no column {name:?} in the header")));
        };
        columns.push((p, at));
    }
    let mut durations = HashMap::new();
    for (index, line) in lines {
        let fields: Vec<&str> = line.trim().split(',').collect();
        if fields.len() < 3 {
            continue;
        }
        let mut points = Vec::with_capacity(columns.len());
        for &(p, at) in &columns {
            let field = fields.get(at).copied().unwrap_or("");
            let ms: f64 = field
                .parse()
                .map_err(|_| ReadError::parse(path, index + 1, format!("duration {field:?} is not a number")))?;
            points.push((p, ms.max(0.0) / 1000.0));
        }
        durations.insert(key(&fields), ServiceTime::Percentiles(points));
    }
    Ok(durations)
}

fn read_invocations(path: &Path, text: &str, durations: &HashMap<String, ServiceTime>) -> Result<Trace, ReadError> {
    let mut lines = text.lines().enumerate();
    let minutes = lines.next().map_or(0, |(_, header)| header.trim().split(',').count().saturating_sub(4));
    if minutes == 0 {
        return Err(ReadError::parse(path, 1, "expected HashOwner,HashApp,HashFunction,Trigger,<minutes>..."));
    }
    let mut revisions = Vec::new();
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split(',').collect();
        let counts = fields
            .iter()
            .skip(4)
            .map(|f| f.parse::<f64>().map(|n| n.max(0.0).round() as u32))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| ReadError::parse(path, index + 1, "an invocation count is not a number"))?;
        if counts.len() != minutes {
            let message = format!("{} minutes, the header has {minutes}", counts.len());
            return Err(ReadError::parse(path, index + 1, message));
        }
        let Some(service) = durations.get(&key(&fields)) else {
            let message = format!("function {} has no row in durations.csv", fields[2]);
            return Err(ReadError::parse(path, index + 1, message));
        };
        let name = fields[2].chars().take(8).collect();
        revisions.push(RevisionTrace { name, arrivals: Arrivals::PerMinute(counts), service: service.clone() });
    }
    if revisions.is_empty() {
        return Err(ReadError::Content { path: path.to_owned(), message: "no functions".into() });
    }
    Ok(Trace { revisions, duration: minutes as f64 * 60.0 })
}

fn key(fields: &[&str]) -> String {
    fields.iter().take(3).copied().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_invocations_with_their_durations() {
        let durations = "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\no,a,f123456789,5,1,0,0,100,100,100,200,300,400,1000\n";
        let durations = read_durations(Path::new("d.csv"), durations).expect("valid");
        let invocations = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\no,a,f123456789,http,0,4,1\n";
        let trace = read_invocations(Path::new("i.csv"), invocations, &durations).expect("valid");
        assert_eq!(trace.duration, 180.0);
        assert_eq!(trace.revisions[0].name, "f1234567");
        assert_eq!(trace.revisions[0].arrivals, Arrivals::PerMinute(vec![0, 4, 1]));
        assert_eq!(trace.revisions[0].service.at(0.5), 0.2);

        let missing = "HashOwner,HashApp,HashFunction,Trigger,1\no,a,other,http,3\n";
        let err = read_invocations(Path::new("i.csv"), missing, &durations).expect_err("no durations");
        assert_eq!(err.to_string(), "i.csv:2: function other has no row in durations.csv");
        let bad = "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f123456789,http,many\n";
        assert!(read_invocations(Path::new("i.csv"), bad, &durations).is_err());
    }
}
