FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home halobestie && chown -R halobestie /app
USER halobestie
EXPOSE 8000
CMD ["python", "-m", "uvicorn", "halobestie.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
