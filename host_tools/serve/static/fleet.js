// Fleet charts: faults per week, target-reached rate per week, valve wear per device.
(function () {
  const width = Math.min(1000, document.body.clientWidth - 60);
  const bars = uPlot.paths.bars({size: [0.6, 60]});
  function chart(el, labels, values, name, colour, paths, yRange) {
    const xs = labels.map((_, i) => i);
    new uPlot({
      width: width, height: 220,
      scales: {x: {time: false, range: [-0.5, Math.max(labels.length - 0.5, 0.5)]},
               y: yRange ? {range: yRange} : {}},
      axes: [{values: (u, ticks) => ticks.map(t => labels[t] ?? ""), incrs: [1]}, {}],
      series: [{label: "x", value: (u, v) => labels[v] ?? ""},
               {label: name, stroke: colour, fill: colour + "88", paths: paths,
                points: {show: !paths}}],
    }, [xs, values], document.getElementById(el));
  }
    chart("faults-week", FLEET.weeks, FLEET.faults, "faults", "#b00020", bars);
  chart("target-week", FLEET.weeks, FLEET.target_rate, "target reached %", "#2a9d8f", null,
        [0, 100]);
  chart("wear", FLEET.devices, FLEET.valve_cycles, "valve cycles", "#264653", bars);
})();
