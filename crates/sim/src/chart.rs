//! SVG charts with plotters: demand and replicas over time, one panel per policy (`--chart`), and a
//! trade-off: a cost in latency (cold starts, or a p99) against replica-seconds as one setting varies.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::run::PolicyOutcome;

/// A chart that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("chart {path}: {message}")]
pub struct ChartError {
    pub path: String,
    pub message: String,
}

fn chart_error(path: &Path) -> impl Fn(String) -> ChartError + '_ {
    move |message| ChartError { path: path.display().to_string(), message }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Both charts plot f64 against f64 into an SVG file.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line, with its colour's sample in the legend.
fn draw_line(
    chart: &mut Chart<'_, '_>,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    label: &str,
    err: &impl Fn(String) -> ChartError,
) -> Result<(), ChartError> {
    chart
        .draw_series(LineSeries::new(points, &colour))
        .map_err(|e| err(e.to_string()))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    Ok(())
}

/// The legend of every line drawn so far, on a mostly opaque white box so lines behind it stay readable.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, err: &impl Fn(String) -> ChartError) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))
}

/// Demand (requests in flight or queued) and replicas paid for, per minute, summed over revisions.
pub fn timeline(path: &Path, title: &str, outcomes: &[PolicyOutcome]) -> Result<(), ChartError> {
    let err = chart_error(path);
    let panels = outcomes.len().max(1);
    let height = 60 + 220 * u32::try_from(panels).unwrap_or(1);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| err(e.to_string()))?;
    let minutes = outcomes.iter().map(|p| p.outcome.demand.len()).max().unwrap_or(0).max(1);
    let hours = minutes as f64 / 60.0;
    for (area, policy) in root.split_evenly((panels, 1)).iter().zip(outcomes) {
        let o = &policy.outcome;
        let top = o.demand.iter().chain(&o.replicas).copied().fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(&policy.name, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..hours, 0.0..top)
            .map_err(|e| err(e.to_string()))?;
        chart.configure_mesh().x_desc("hours").y_desc("count").draw().map_err(|e| err(e.to_string()))?;
        let series = |values: &[f64]| -> Vec<(f64, f64)> {
            values.iter().enumerate().map(|(m, v)| ((m as f64 + 0.5) / 60.0, *v)).collect()
        };
        draw_line(&mut chart, series(&o.demand), COLOURS[0], "demand (in flight + queued)", &err)?;
        draw_line(&mut chart, series(&o.replicas), COLOURS[3], "replicas", &err)?;
        draw_legend(&mut chart, &err)?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// One curve of the trade-off chart: a policy family, with one point per setting.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeoffCurve {
    pub name: String,
    /// (replica-seconds, the latency cost on the y axis, setting label)
    pub points: Vec<(f64, f64, String)>,
}

/// `y_desc` against replica-seconds, one line per policy family, each point labelled with its setting.
pub fn tradeoff(path: &Path, title: &str, y_desc: &str, curves: &[TradeoffCurve]) -> Result<(), ChartError> {
    let err = chart_error(path);
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let all = curves.iter().flat_map(|c| &c.points);
    let (x_max, y_max) = all.fold((1.0f64, 1.0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max * 1.1, 0.0..y_max * 1.1)
        .map_err(|e| err(e.to_string()))?;
    chart.configure_mesh().x_desc("replica-seconds").y_desc(y_desc).draw().map_err(|e| err(e.to_string()))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let xy: Vec<(f64, f64)> = curve.points.iter().map(|p| (p.0, p.1)).collect();
        draw_line(&mut chart, xy.clone(), colour, &curve.name, &err)?;
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(
                curve.points.iter().map(|p| Text::new(p.2.clone(), (p.0, p.1), ("sans-serif", 11).into_font())),
            )
            .map_err(|e| err(e.to_string()))?;
    }
    draw_legend(&mut chart, &err)?;
    root.present().map_err(|e| err(e.to_string()))
}
