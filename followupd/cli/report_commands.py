"""`report`: where the money stands: receivables by client, DSO, days to pay, a chart."""

from __future__ import annotations

from pathlib import Path

import click

from followupd.cli import report_chart, report_output
from followupd.cli.app import App, pass_app
from followupd.cli.output_file import OutputFile
from followupd.domain.owner_scope import scope_of
from followupd.domain.receivables import receivables
from followupd.store.receivables import invoice_facts

FILE = OutputFile()


@click.command(epilog=report_output.JSON_FIELDS)
@click.option("--png", type=FILE, metavar="FILE", help="also draw the aging chart, as PNG")
@click.option("--svg", type=FILE, metavar="FILE", help="also draw the aging chart, as SVG")
@click.option("--json", "as_json", is_flag=True, help="one JSON object (fields below)")
@click.option("--owner", "owner_key", metavar="KEY", help="only this owner's missions")
@click.option("--as-of", "as_of", metavar="DATE", help="the day to report on (default: today)")
@pass_app
def report(
    app: App,
    png: Path | None,
    svg: Path | None,
    as_json: bool,
    owner_key: str | None,
    as_of: str | None,
) -> None:
    """See where the money stands: what each client owes, how late, how fast it pays.

    For each client (and in total, per currency: amounts of different
    currencies are never added): what is unpaid at the end of the day (part
    payments deducted) by days past due (not due, 1-30, 31-60, 61-90, over
    90), and the open invoices; days to pay and days late, on average, over
    the invoices paid in full in the 12 months to the day; and, per
    currency, days sales outstanding by the countback method: the days of
    the latest months' sales (invoices issued) it takes to add up to what is
    unpaid, counting back from the day.

    --png and --svg draw the aging as stacked bars per client (needs the
    charts extra: pip install 'followupd[charts]').
    """
    if png or svg:
        report_chart.require_matplotlib()
    day = app.day(as_of)
    scope = scope_of(app.settings, app.owners(owner_key)[0].key) if owner_key else None
    with app.session(commit=False) as session:
        found = receivables(invoice_facts(session, day, scope), day)
    if as_json:
        click.echo(report_output.receivables_json(found, owner_key))
    else:
        report_output.print_receivables(found)
    for path, image_format in ((png, "png"), (svg, "svg")):
        if path is not None:
            report_chart.draw(found, path, image_format, owner_key)
            click.echo(f"chart written to {path}", err=True)
