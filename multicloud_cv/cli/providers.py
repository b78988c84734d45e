"""``mcv providers``: what is installed, what it can do, how to configure it, what failed to load.

The report is built as plain data (it must stay fast: no pydantic model building on this
path); its shape is :class:`multicloud_cv.schema.ProvidersReport`, and a test validates
the output against that schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_cv.registry import Registry


def providers_report(registry: Registry) -> dict[str, Any]:
    """Build the report: one entry per provider, settings documented, readiness checked offline."""
    from multicloud_cv.config import redact, resolve
    from multicloud_cv.errors import ConfigError

    infos = []
    for name in registry.names:
        entry = registry.entry(name)
        cls = entry.primary
        problems: list[str] = []
        try:
            values = resolve(name, cls.settings)
        except ConfigError as exc:
            values, problems = {}, [str(exc)]
        shown = redact(cls.settings, values)
        settings = [
            {
                "name": s.name,
                "help": s.help,
                "default": None if s.secret else s.default,
                "secret": s.secret,
                "required": s.required,
                "env": s.env_var(name),
                "value_set": bool(shown.get(s.name)),
            }
            for s in cls.settings
        ]
        if not problems:
            problems = cls(values).problems()
        infos.append(
            {
                "name": name,
                "roles": entry.roles,
                "version": entry.version,
                "api_version": str(cls.api_version),
                "description": cls.description,
                "capabilities": cls.capabilities.as_dict(),
                "settings": settings,
                "ready": not problems,
                "problems": problems,
            }
        )
    failures = [
        {"name": f.name, "namespace": f.namespace, "reason": f.reason, "install": f.install} for f in registry.failures
    ]
    return {"providers": infos, "failures": failures}


def render_providers(report: dict[str, Any]) -> None:
    """Print the report for people: one block per provider."""
    from rich.markup import escape

    from multicloud_cv.cli.output import stdout_console

    console = stdout_console()
    for info in report["providers"]:
        caps = info["capabilities"]
        ready = "[green]ready[/]" if info["ready"] else "[red]not ready[/]"
        version = f" {info['version']}" if info["version"] else ""
        console.print(
            f"[bold]{info['name']}[/]{version} ({', '.join(info['roles'])}) {ready}: {escape(info['description'])}"
        )
        for problem in info["problems"]:
            console.print(f"  problem: {escape(problem)}", highlight=False)
        console.print("  supports: " + ", ".join(caps["supported"]), highlight=False)
        for feature, reason in caps["unsupported"].items():
            console.print(f"  no {feature}: {escape(reason)}", highlight=False)
        limits = ", ".join(f"{k}={v}" for k, v in caps["limits"].items() if v is not None)
        console.print(f"  limits: {limits}", highlight=False)
        for s in info["settings"]:
            default = f" (default {s['default']})" if s["default"] not in (None, "") else ""
            secret = " (secret)" if s["secret"] else ""
            line = f"  setting {s['name']}{secret}: {s['help']}{default}; env {s['env']}"
            console.print(escape(line), highlight=False)
    if report["failures"]:
        console.print("[bold red]plugins that failed to load[/]")
        for failure in report["failures"]:
            hint = f"; install: {failure['install']}" if failure["install"] else ""
            line = f"  {failure['name']} [{failure['namespace']}]: {failure['reason']}{hint}"
            console.print(escape(line), highlight=False)
    if not report["providers"]:
        console.print("no providers installed; the built-in one is: pip install -e plugins/local")
