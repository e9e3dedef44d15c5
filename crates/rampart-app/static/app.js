// Small progressive enhancements: every page works without them.
// A button with data-copy="<id>" copies the codes (or the text) of that element.
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    const codes = [...source.querySelectorAll("code")].map((code) => code.textContent);
    const text = codes.length ? codes.join("\n") : source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select the codes instead";
    }
  });
});
