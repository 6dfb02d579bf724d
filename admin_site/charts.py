"""Small charts drawn on the server as inline SVG: no JavaScript, readable by a screen reader.

The console home shows one per panel: changes and imports per day.  The
figures are in the SVG's ``<title>`` (a sentence with the totals), its
``<desc>`` (every day that had any) and a ``<title>`` per day, which browsers
show as a tooltip.
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT, TOP, BOTTOM = 330, 96, 14, 16


def day_label(day):
    return f"{day.day} {day:%b %Y}"


def counted(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def daily_bars(chart_id, heading, days, series):
    """A grouped bar chart of ``series`` per day.

    ``series`` is ``[(key, noun, colour, counts)]``, one count per day of
    ``days``; ``noun`` is singular ("change").  Each day is a ``<g>`` carrying
    its counts as ``data-<key>`` attributes.
    """
    plot = HEIGHT - TOP - BOTTOM
    top = max([1, *(n for *_, counts in series for n in counts)])
    step = WIDTH / len(days)
    bar = max(1.0, (step - 2) / len(series))
    groups = []
    for i, day in enumerate(days):
        rects, words, data = [], [], {}
        for j, (key, noun, colour, counts) in enumerate(series):
            n = counts[i]
            data[key] = n
            words.append(counted(n, noun))
            height = plot * n / top
            if n:
                rects.append(
                    format_html(
                        '<rect class="bar-{}" x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                        key,
                        f"{i * step + 1 + j * bar:.1f}",
                        f"{TOP + plot - max(height, 1.0):.1f}",
                        f"{bar:.1f}",
                        f"{max(height, 1.0):.1f}",
                        colour,
                    )
                )
        attrs = format_html_join(" ", 'data-{}="{}"', data.items())
        groups.append(
            format_html(
                '<g class="day" data-date="{}" {}><title>{}: {}</title>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="transparent"/>{}</g>',
                day.isoformat(),
                attrs,
                day_label(day),
                ", ".join(words),
                f"{i * step:.1f}",
                TOP,
                f"{step:.1f}",
                plot,
                mark_safe("".join(rects)),  # noqa: S308 - built with format_html above
            )
        )
    totals = ", ".join(counted(sum(counts), noun) for _, noun, _, counts in series)
    busy = [
        f"{day_label(day)}: " + ", ".join(counted(counts[i], noun) for _, noun, _, counts in series)
        for i, day in enumerate(days)
        if any(counts[i] for *_, counts in series)
    ]
    title = f"{heading}, {day_label(days[0])} to {day_label(days[-1])}: {totals}."
    desc = "; ".join(busy) + "." if busy else "Nothing on any day."
    return format_html(
        '<svg class="daily-chart" id="{id}" role="img" aria-labelledby="{id}-title {id}-desc" '
        'viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
        '<line x1="0" y1="{base}" x2="{w}" y2="{base}" stroke="currentColor" stroke-opacity=".4"/>'
        '<text x="0" y="10" font-size="10" fill="currentColor">{top}</text>'
        '<text x="0" y="{h}" font-size="10" fill="currentColor" dy="-3">{first}</text>'
        '<text x="{w}" y="{h}" font-size="10" fill="currentColor" dy="-3" text-anchor="end">{last}</text>'
        "{groups}</svg>",
        id=chart_id,
        w=WIDTH,
        h=HEIGHT,
        base=HEIGHT - BOTTOM,
        title=title,
        desc=desc,
        top=top,
        first=day_label(days[0]),
        last=day_label(days[-1]),
        groups=mark_safe("".join(groups)),  # noqa: S308 - built with format_html above
    )
