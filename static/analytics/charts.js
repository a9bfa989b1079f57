// The analytics charts (Apache ECharts, from npm): drawn from the JSON the page carries in #analytics-chart-data.
(function () {
  "use strict";
  const zh = (document.documentElement.lang || "").startsWith("zh");
  const words = zh
    ? { availability: "可用率 (%)", failures: "故障次数", mttr: "平均修复时间 (分钟)", ftf: "一次修复率 (%)" }
    : { availability: "Availability (%)", failures: "Failures", mttr: "MTTR (minutes)", ftf: "First-time fix (%)" };
  const axis = { axisLabel: { fontSize: 11 }, splitLine: { lineStyle: { color: "#eceff3" } } };

  function option(kind, trend) {
    const months = trend.map((row) => row.month);
    const base = {
      animation: false,
      grid: { left: 44, right: 44, top: 34, bottom: 26 },
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      xAxis: { type: "category", data: months, axisLabel: { fontSize: 11 } },
    };
    if (kind === "availability") {
      return Object.assign(base, {
        yAxis: [
          Object.assign({ type: "value", min: (v) => Math.max(0, Math.floor(v.min - 1)), max: 100 }, axis),
          Object.assign({ type: "value", minInterval: 1 }, axis, { splitLine: { show: false } }),
        ],
        series: [
          { name: words.availability, type: "line", data: trend.map((r) => r.availability), color: "#2563eb", smooth: true },
          { name: words.failures, type: "bar", yAxisIndex: 1, data: trend.map((r) => r.failures), color: "#f59e0b", barMaxWidth: 18 },
        ],
      });
    }
    return Object.assign(base, {
      yAxis: [
        Object.assign({ type: "value", min: 0 }, axis),
        Object.assign({ type: "value", min: 0, max: 100 }, axis, { splitLine: { show: false } }),
      ],
      series: [
        { name: words.mttr, type: "bar", data: trend.map((r) => r.mttr_min), color: "#dc2626", barMaxWidth: 18 },
        { name: words.ftf, type: "line", yAxisIndex: 1, data: trend.map((r) => r.first_time_fix), color: "#059669", smooth: true },
      ],
    });
  }

  function draw() {
    const source = document.getElementById("analytics-chart-data");
    if (!source || !window.echarts) return;
    const data = JSON.parse(source.textContent);
    const charts = [];
    document.querySelectorAll("[data-chart]").forEach((node) => {
      const chart = window.echarts.init(node, null, { renderer: "svg" });
      chart.setOption(option(node.dataset.chart, data.trend || []));
      node.dataset.drawn = "1";
      charts.push(chart);
    });
    window.addEventListener("resize", () => charts.forEach((chart) => chart.resize()));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
