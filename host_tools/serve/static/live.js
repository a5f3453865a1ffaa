// The connected board's telemetry, polled twice a second (the server keeps the last frames).
(function () {
  const width = Math.min(1000, document.body.clientWidth - 60);
  const data = [[], [], []];
  const plot = new uPlot({
    title: "Tissue temperature (°C), live", width: width, height: 300,
    scales: {x: {time: false}},
    series: [{label: "s"}, {label: "tissue °C", stroke: "#1d3557"},
             {label: "setpoint °C", stroke: "#e76f51", dash: [6, 4]}],
  }, data, document.getElementById("live-chart"));
  let after = -1;
  const show = (id, v) => { document.getElementById(id).textContent = v ?? "—"; };
  async function poll() {
    try {
      const r = await fetch("/api/live?after=" + after);
      const s = await r.json();
      show("live-error", s.error || "");
      show("gains", Object.entries(s.gains || {}).map(([k, v]) => k + " = " + v).join(", "));
      for (const row of s.rows || []) {
        data[0].push(row.host_s); data[1].push(row.tissue); data[2].push(row.setpoint_c);
        after = row.host_s;
      }
      for (const a of data) a.splice(0, Math.max(0, a.length - 600));
      const last = (s.rows || [])[s.rows.length - 1];
      if (last) {
        show("phase", last.phase); show("tissue", last.tissue?.toFixed(2));
        show("setpoint", last.setpoint_c); show("demand", last.demand);
        show("valve-state", last.valve ? "open" : "closed"); show("live-faults", last.faults || "none");
        plot.setData(data);
      }
    } catch (e) {
      show("live-error", "server unreachable: " + e);
    }
    setTimeout(poll, 500);
  }
  poll();
})();
