"""Real failing Spark jobs: the source of the sample event logs the Spark server ships.

Usage: python jobs.py KIND EVENT_LOG_DIR_URL, with KIND one of user_code, ansi_sql, bad_data,
executor_lost, out_of_memory (pyspark 4.3.0 and Java 17; executor_lost and out_of_memory run a
local cluster of two 512 MB executors). The job runs one healthy job, then fails as KIND says.
"""
import sys, os
from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import IntegerType

kind, events = sys.argv[1], sys.argv[2]  # a failure kind and an event-log dir URL
master = "local[2]"
conf = {}
if kind in ("executor_lost", "out_of_memory"):
    master = "local-cluster[2,1,512]"
    conf = {"spark.executor.memory": "512m", "spark.task.maxFailures": "2"}
b = (SparkSession.builder.appName(f"nightly-{kind.replace('_','-')}").master(master)
     .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", events)
     .config("spark.ui.enabled", "false"))
for k, v in conf.items():
    b = b.config(k, v)
spark = b.getOrCreate()
df = spark.range(0, 100000, numPartitions=4).withColumn("k", F.col("id") % 10)
print(df.groupBy("k").count().count())
try:
    if kind == "user_code":
        @F.udf(IntegerType())
        def parse_amount(x):
            if x == 4242:
                raise ValueError(f"bad record id={x}: amount field is not numeric")
            return int(x) * 2
        df.select(parse_amount("id").alias("a")).agg(F.sum("a")).collect()
    elif kind == "ansi_sql":
        spark.sql("SELECT id, 100 / (id - 777) AS r FROM range(0, 1000, 1, 2)").collect()
    elif kind == "bad_data":
        path = os.path.join(os.path.dirname(events.replace("file://", "")), "orders.json")
        with open(path, "w") as f:
            for i in range(1000):
                f.write('{"order_id": %d, "amount": %d}\n' % (i, i * 3))
            f.write('{"order_id": 1000, "amount": 12\n')
        spark.read.schema("order_id INT, amount INT").option("mode", "FAILFAST").json(path).agg(F.sum("amount")).collect()
    elif kind == "out_of_memory":
        @F.udf("string")
        def widen(x):
            return "x" * 400_000_000
        spark.range(0, 8, numPartitions=2).select(F.length(widen("id")).alias("n")).agg(F.sum("n")).collect()
    elif kind == "executor_lost":
        @F.udf(IntegerType())
        def crash(x):
            if x == 4242:
                # The executor JVM is the parent of the Python daemon that forked this worker.
                daemon = os.getppid()
                with open(f"/proc/{daemon}/stat") as f:
                    executor = int(f.read().rsplit(")", 1)[1].split()[1])
                os.kill(executor, 9)
            return int(x)
        df.select(crash("id").alias("a")).agg(F.sum("a")).collect()
except Exception as e:
    print("job failed:", type(e).__name__, str(e)[:300])
spark.stop()
