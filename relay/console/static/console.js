// Times are sent in UTC (kept in the title, shown on hover); show them in the browser's zone.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) el.textContent = when.toLocaleString();
});
