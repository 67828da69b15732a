// "/" puts the cursor in the track picker's biosample search (as on GitHub, cellxgene),
// unless one is typing somewhere already.
document.addEventListener('keydown', (event) => {
    const target = event.target;
    const typing = target && (target.isContentEditable ||
        ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
    const box = document.getElementById('picker-bio-text');
    if (event.key === '/' && !typing && box) {
        event.preventDefault();
        box.focus();
    }
});
