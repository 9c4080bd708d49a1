from tests.dbt.test_segments_and_routing import *
def test_show(built):
    r = CliRunner().invoke(app, ["segment", "preview", "hs2000_upsell", "--as-of", "2026-11-27"], env=_env(built))
    print(r.output)
    r = CliRunner().invoke(app, ["segment", "list"], env=_env(built))
    print(r.output)
