// A session's trace: tissue temperature and setpoint, phases shaded, faults marked;
// valve demand and valve state below, zoom shared (uPlot: drag to zoom, double-click out).
(function () {
  const COLOURS = {PRECOOL: "#cfe8ff", FREEZE: "#9cc9f5", THAW: "#ffe3c2", DONE: "#e6e6e6",
                   ABORTED: "#f7c6c6", FAULT: "#f19999"};
  const width = Math.min(1100, document.body.clientWidth - 60);
  const sync = uPlot.sync("session");
  window.cryoCharts = [];  // the browser tests read the zoomed scale
  function shade(u) {
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    for (const p of PHASES) {
      const a = u.valToPos(p.start_s, "x", true), b = u.valToPos(p.end_s, "x", true);
      ctx.fillStyle = COLOURS[p.phase] || "#f4f4f4";
      ctx.fillRect(a, top, Math.max(1, b - a), h);
    }
  }
  function faults(u) {
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    ctx.strokeStyle = "#b00020"; ctx.fillStyle = "#b00020"; ctx.lineWidth = 2;
    ctx.font = "12px sans-serif";
    for (const f of FAULTS) {
      const x = u.valToPos(f.time_s, "x", true);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      ctx.fillText(f.name, x + 4, top + 14);
    }
  }
  const cursor = {sync: {key: sync.key}, drag: {x: true, y: false}};
  window.cryoCharts.push(new uPlot({
    title: "Tissue temperature (°C)", width: width, height: 340, cursor: cursor,
    axes: [{label: "s"}, {size: 50}],
    hooks: {drawClear: [shade], draw: [faults]}, scales: {x: {time: false}},
    series: [{label: "t (s)"},
             {label: "tissue °C", stroke: "#1d3557", width: 1.5},
             {label: "setpoint °C", stroke: "#e76f51", dash: [6, 4]}],
  }, [TRACE.t_s, TRACE.tissue_c, TRACE.setpoint_c], document.getElementById("trace")));
  window.cryoCharts.push(new uPlot({
    title: "Valve", width: width, height: 180, cursor: cursor,
    scales: {x: {time: false}, pct: {range: [0, 100]}},
    axes: [{label: "s"}, {scale: "pct", size: 50}],
    series: [{label: "t (s)"},
             {label: "demand %", scale: "pct", stroke: "#2a9d8f"},
             {label: "open", scale: "pct", stroke: "#264653", fill: "rgba(38,70,83,0.15)"}],
  }, [TRACE.t_s, TRACE.demand_pct, TRACE.valve.map(v => v * 100)],
     document.getElementById("valve")));
})();
