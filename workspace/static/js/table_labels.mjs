// On a narrow screen the stylesheet lays each table row out as a stack of cells
// (.govuk-table, below the tablet breakpoint). Each cell is then labelled with its
// column's heading, copied here into data-label (shown by the stylesheet), so a stacked
// cell still says what it is. Rows added later (live pages) are labelled as they come.

function headings(table) {
  const row = table.tHead && table.tHead.rows[0];
  return row ? Array.from(row.cells, (cell) => cell.textContent.trim()) : [];
}

export function labelCells(table) {
  const names = headings(table);
  if (!names.length) return;
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      let column = 0;
      for (const cell of row.cells) {
        if (cell.colSpan === 1 && names[column] && !cell.hasAttribute("data-label")) {
          cell.setAttribute("data-label", names[column]);
        }
        column += cell.colSpan;
      }
    }
  }
}

export function labelTables(root = document) {
  for (const table of root.querySelectorAll("table.govuk-table")) {
    labelCells(table);
    new MutationObserver(() => labelCells(table)).observe(table, { childList: true, subtree: true });
  }
}
