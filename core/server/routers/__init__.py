"""One ``APIRouter`` per resource; ``core.server.app.create_app`` includes them all."""
